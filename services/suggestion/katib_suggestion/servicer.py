"""Katib's ``api.v1.beta1.Suggestion`` and ``EarlyStopping`` servicers over our algorithms.

Wire ↔ core conversion is ``katib_suggest.wire`` (shared with ``RemoteSuggester``); the decisions
are the in-process ones (``katib_suggest.Suggester``, ``katib_core.early_stopping``). Errors map to
status codes in one place (``_answering``): a ``ValidationError`` → INVALID_ARGUMENT with its
message, which starts with the offending field's path; the DB manager unreachable → UNAVAILABLE;
anything else → INTERNAL with the exception's type and message (the traceback is logged, never sent).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final, TypeVar

import grpc

from katib_api.v1beta1 import api_pb2, api_pb2_grpc
from katib_core import early_stopping
from katib_core.errors import KatibError, NotFoundError, StorageUnavailableError, ValidationError
from katib_core.models import EarlyStoppingSpec
from katib_operator.objects import ApiUnavailableError
from katib_suggest import Suggester, validate_algorithm_settings, wire
from katib_suggestion.trial_status import AmbiguousTrialError, TrialStatusWriter
from pykatib import dbmanager
from pykatib.metric_logs import MetricLogs

_log = logging.getLogger(__name__)
T = TypeVar("T")
#: How many succeeded trials' objective values to remember (a succeeded trial's logs never change).
_MAX_CACHED_TRIALS: Final = 100_000


def _answering(method: Callable[..., T]) -> Callable[..., T]:
    """Turn what a handler raises into a gRPC status (see the module docstring)."""

    @functools.wraps(method)
    def handle(self: Any, request: Any, context: grpc.ServicerContext) -> T:
        try:
            return method(self, request, context)
        except ValidationError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except StorageUnavailableError as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except Exception as exc:  # - the boundary: every failure becomes a status
            _log.exception("%s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"{method.__name__}: {type(exc).__name__}: {exc}")
        raise AssertionError("abort raises")

    return handle


class SuggestionServicer(api_pb2_grpc.SuggestionServicer):
    """``GetSuggestions``: exactly ``current_request_number`` assignments (fewer only when a grid
    runs out; none while hyperband waits for a rung), with the settings an algorithm returns (its
    state) in ``algorithm``, which the controller sends back next time. ``ValidateAlgorithmSettings``:
    the webhook's rule."""

    def __init__(self, suggester: Suggester) -> None:
        self._suggester = suggester

    @_answering
    def GetSuggestions(  # noqa: N802 - gRPC method names are fixed by the proto
        self, request: api_pb2.GetSuggestionsRequest, context: grpc.ServicerContext
    ) -> api_pb2.GetSuggestionsReply:
        asked = wire.request_from_proto(request)
        reply = self._suggester.suggest(asked)
        spec = asked.experiment.spec
        _log.info(
            "GetSuggestions %s (%s): %d trials, %d asked, %d answered",
            request.experiment.name,
            request.experiment.spec.algorithm.algorithm_name,
            len(request.trials),
            request.current_request_number,
            len(reply.assignments),
        )
        return wire.reply_to_proto(reply, spec.algorithm if spec else None)

    @_answering
    def ValidateAlgorithmSettings(  # noqa: N802
        self, request: api_pb2.ValidateAlgorithmSettingsRequest, context: grpc.ServicerContext
    ) -> api_pb2.ValidateAlgorithmSettingsReply:
        validate_algorithm_settings(wire.experiment_from_proto(request.experiment))
        return api_pb2.ValidateAlgorithmSettingsReply()


class EarlyStoppingServicer(api_pb2_grpc.EarlyStoppingServicer):
    """medianstop as Katib's medianstop service runs it: rules from the objective values the
    succeeded trials (last condition Succeeded) logged in the DB manager at ``db_manager_address``.

    ``SetTrialStatus`` marks the Trial EarlyStopped through the Kubernetes API, as Katib's service
    does (``trial_status``); without Kubernetes access it answers FAILED_PRECONDITION.
    """

    def __init__(self, *, db_timeout: float = 10.0, trial_status: TrialStatusWriter | None = None) -> None:
        self._db_timeout = db_timeout
        self._trial_status = trial_status
        self._clients: dict[str, MetricLogs] = {}
        self._values: OrderedDict[tuple[str, str, str], list[str]] = OrderedDict()
        self._lock = threading.Lock()

    @_answering
    def ValidateEarlyStoppingSettings(  # noqa: N802
        self, request: api_pb2.ValidateEarlyStoppingSettingsRequest, context: grpc.ServicerContext
    ) -> api_pb2.ValidateEarlyStoppingSettingsReply:
        early_stopping.parse_settings(wire.early_stopping_from_proto(request.early_stopping))
        return api_pb2.ValidateEarlyStoppingSettingsReply()

    @_answering
    def GetEarlyStoppingRules(  # noqa: N802
        self, request: api_pb2.GetEarlyStoppingRulesRequest, context: grpc.ServicerContext
    ) -> api_pb2.GetEarlyStoppingRulesReply:
        experiment = wire.experiment_from_proto(request.experiment)
        spec = experiment.spec
        early_stopping.parse_settings((spec.early_stopping if spec else None) or EarlyStoppingSpec())
        metric = (spec.objective.objective_metric_name if spec and spec.objective else None) or ""
        if not metric:
            raise ValidationError("experiment.spec.objective.objectiveMetricName", "is required")
        names = wire.succeeded_trial_names(request.trials)
        values = [self._objective_values(request.db_manager_address, name, metric) for name in names]
        rules = early_stopping.median_stop_rules(experiment, values)
        return api_pb2.GetEarlyStoppingRulesReply(early_stopping_rules=wire.rules_to_proto(rules))

    def SetTrialStatus(  # noqa: N802
        self, request: api_pb2.SetTrialStatusRequest, context: grpc.ServicerContext
    ) -> api_pb2.SetTrialStatusReply:
        name = request.trial_name
        if not name:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "trial_name: is required")
        if self._trial_status is None:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"SetTrialStatus({name}): this service has no Kubernetes access (start it with --kubeconfig,"
                " or in a Pod with a service account that may update trials/status)",
            )
        assert self._trial_status is not None
        try:
            where = self._trial_status.early_stop(name)
        except NotFoundError as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        except AmbiguousTrialError as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except ApiUnavailableError as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except KatibError as exc:
            context.abort(grpc.StatusCode.INTERNAL, f"SetTrialStatus({name}): {exc}")
        _log.info("SetTrialStatus: trial %s is EarlyStopped", where)
        return api_pb2.SetTrialStatusReply()

    def _objective_values(self, address: str, trial: str, metric: str) -> list[str]:
        key = (address, trial, metric)
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        if not address:
            raise ValidationError("db_manager_address", "is required to read the succeeded trials' metric logs")
        values = self._metric_logs(address).values(trial, metric)
        with self._lock:
            self._values[key] = values
            while len(self._values) > _MAX_CACHED_TRIALS:
                self._values.popitem(last=False)
        return values

    def _metric_logs(self, address: str) -> MetricLogs:
        with self._lock:
            client = self._clients.get(address)
            if client is None:
                channel = dbmanager.open_channel(address)
                client = self._clients[address] = MetricLogs(
                    dbmanager.DBManagerClient(channel), timeout=self._db_timeout
                )
            return client
