"""A suggestion algorithm served elsewhere, behind the same port as ``Suggester``.

``RemoteSuggester(address).suggest(request)`` sends ``request`` as Katib's controller would
(``katib_suggest.wire``) to any ``api.v1.beta1.Suggestion`` service — ours (``katib-suggestion``)
or one of Katib's images — so the experiment loop drives an external algorithm exactly as it
drives an in-process one. Each call has Katib's 60 s deadline; UNAVAILABLE (the service is
starting or restarting) is retried with backoff inside it; INVALID_ARGUMENT raises our
``ValidationError`` with the service's message, which the loop turns into a Failed Suggestion.

grpcio is already a dependency here: the generated ``katib_api`` package needs it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Final

import grpc

from katib_api.v1beta1 import api_pb2
from katib_core import trial_conditions
from katib_core.errors import KatibError, ValidationError
from katib_core.models import Experiment
from katib_core.suggestions import SuggestionReply, SuggestionRequest
from katib_suggest import wire

#: Katib's controller gives GetSuggestions (and GetEarlyStoppingRules) 60 s.
DEFAULT_TIMEOUT: Final = 60.0
_GET: Final = "/api.v1.beta1.Suggestion/GetSuggestions"
_VALIDATE: Final = "/api.v1.beta1.Suggestion/ValidateAlgorithmSettings"
_BACKOFF_FIRST: Final = 0.1
_BACKOFF_MAX: Final = 5.0
#: Reconnect soon after the service restarts (grpcio's default backoff starts at 1 s and grows to 120 s).
_OPTIONS: Final = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


class SuggestionServiceError(KatibError, RuntimeError):
    """The service failed (not a verdict on the settings); ``code`` is its gRPC status code name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class RemoteSuggester:
    """``Suggester``'s shape over gRPC (thread-safe: one channel, calls in parallel).

    Args:
        address: ``host:port`` of the Suggestion service.
        timeout: seconds one ``suggest`` may take, retries included.
    """

    def __init__(
        self,
        address: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.address = address
        self._timeout = timeout
        self._sleep = sleep
        self._clock = clock
        self._channel = grpc.insecure_channel(address, options=_OPTIONS)
        self._get = self._channel.unary_unary(
            _GET,
            request_serializer=api_pb2.GetSuggestionsRequest.SerializeToString,
            response_deserializer=api_pb2.GetSuggestionsReply.FromString,
        )
        self._validate = self._channel.unary_unary(
            _VALIDATE,
            request_serializer=api_pb2.ValidateAlgorithmSettingsRequest.SerializeToString,
            response_deserializer=api_pb2.ValidateAlgorithmSettingsReply.FromString,
        )

    def suggest(self, request: SuggestionRequest) -> SuggestionReply:
        """``request.count`` new assignments (fewer, with ``exhausted``, when the service ran out).

        Raises:
            ValidationError: the service refused the Experiment (INVALID_ARGUMENT), or answered
                more assignments than asked for.
            SuggestionServiceError: any other failure, or still unavailable at the deadline.
        """
        if request.count <= 0:
            return SuggestionReply()
        reply = self._call(self._get, wire.request_to_proto(request))
        assert isinstance(reply, api_pb2.GetSuggestionsReply)
        if len(reply.parameter_assignments) > request.count:
            raise ValidationError(
                "",
                f"the suggestion service at {self.address} answered {len(reply.parameter_assignments)}"
                f" assignments for {request.count}",
            )
        running = any(t.condition not in trial_conditions.COMPLETED_TYPES for t in request.history)
        return wire.reply_from_proto(reply, request.count, running=running)

    def validate(self, experiment: Experiment) -> None:
        """Katib's ``ValidateAlgorithmSettings`` (UNIMPLEMENTED counts as valid, as Katib's controller has it).

        Raises:
            ValidationError: the service refused the settings, with its message.
            SuggestionServiceError: the service failed or stayed unavailable.
        """
        try:
            self._call(
                self._validate,
                api_pb2.ValidateAlgorithmSettingsRequest(experiment=wire.experiment_to_proto(experiment)),
            )
        except SuggestionServiceError as exc:
            if exc.code != grpc.StatusCode.UNIMPLEMENTED.name:
                raise

    def forget(self, key: str) -> None:
        """Nothing to do: the service keeps a bounded number of Experiments' state and rebuilds the rest."""

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: grpc.UnaryUnaryMultiCallable, message: object) -> object:
        deadline = self._clock() + self._timeout
        delay = _BACKOFF_FIRST
        while True:
            left = deadline - self._clock()
            try:
                return method(message, timeout=max(left, 0.001))
            except grpc.RpcError as exc:
                code: grpc.StatusCode = exc.code()
                details: str = exc.details() or ""
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise _validation_error(details) from None
            wait = delay / 2 + random.random() * delay / 2  # - jitter, not secrecy
            if code != grpc.StatusCode.UNAVAILABLE or self._clock() + wait >= deadline:
                raise SuggestionServiceError(code.name, f"{self.address}: {details}") from None
            self._sleep(wait)
            delay = min(delay * 2, _BACKOFF_MAX)


def _validation_error(details: str) -> ValidationError:
    """The service's message as our error; ``field`` is its leading field path when it has one."""
    field, sep, reason = details.partition(": ")
    if sep and field and " " not in field:
        return ValidationError(field, reason)
    return ValidationError("", details)


__all__ = ["DEFAULT_TIMEOUT", "RemoteSuggester", "SuggestionServiceError"]
