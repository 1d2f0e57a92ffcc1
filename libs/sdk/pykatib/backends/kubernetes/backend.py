"""Katib's CRDs on a Kubernetes API server, through ``kubernetes.client.CustomObjectsApi``.

Objects go out as plain JSON dicts built by ``katib_core.models`` (never as client model
objects, whose handling changed across ``kubernetes`` releases: docs/katib-compat.md#tune-experiment on 37.x).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from katib_core import constants, trial_logs
from katib_core.errors import AlreadyExistsError, KatibError, NotFoundError
from katib_core.models import Experiment, KatibModel, Suggestion, Trial
from pykatib import _reporting
from pykatib.backends._base import Backend, text_lines

if TYPE_CHECKING:
    from pykatib.backends import KubernetesBackendConfig

_SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/"
_M = TypeVar("_M", bound=KatibModel)


def api_client_for(settings: KubernetesBackendConfig) -> client.ApiClient:
    """An ApiClient from the given configuration, else kubeconfig (outside a pod) or in-cluster config."""
    configuration = settings.client_configuration
    if configuration is None:
        configuration = client.Configuration()
        loader: Any = config  # untyped in some kubernetes releases
        if settings.config_file or not os.path.isdir(_SERVICE_ACCOUNT_DIR):
            loader.load_kube_config(
                config_file=settings.config_file, context=settings.context, client_configuration=configuration
            )
        else:
            loader.load_incluster_config(client_configuration=configuration)
    return client.ApiClient(configuration)


class KubernetesBackend(Backend):
    """Experiments, Trials and Suggestions as ``kubeflow.org/v1beta1`` custom objects."""

    def __init__(self, settings: KubernetesBackendConfig, *, api_client: client.ApiClient | None = None) -> None:
        self.api_client = api_client or api_client_for(settings)
        # Any: newer kubernetes releases type these methods with their own models; we send JSON dicts.
        self._api: Any = client.CustomObjectsApi(self.api_client)
        self.namespace = settings.namespace or _reporting.current_namespace()

    def create_experiment(self, experiment: Experiment, namespace: str, timeout: float) -> Experiment:
        with _errors():
            created = self._api.create_namespaced_custom_object(
                constants.GROUP,
                constants.VERSION,
                namespace,
                constants.EXPERIMENT_PLURAL,
                experiment.to_api(),
                _request_timeout=timeout,
            )
        return Experiment.from_api(created)

    def get_experiment(self, name: str, namespace: str, timeout: float) -> Experiment:
        return self._get(Experiment, constants.EXPERIMENT_PLURAL, name, namespace, timeout)

    def list_experiments(self, namespace: str, timeout: float) -> list[Experiment]:
        return self._list(Experiment, constants.EXPERIMENT_PLURAL, namespace, None, timeout)

    def patch_experiment(self, name: str, namespace: str, patch: dict[str, Any], timeout: float) -> Experiment:
        with _errors():
            patched = self._api.patch_namespaced_custom_object(
                constants.GROUP,
                constants.VERSION,
                namespace,
                constants.EXPERIMENT_PLURAL,
                name,
                patch,
                _request_timeout=timeout,
            )
        return Experiment.from_api(patched)

    def delete_experiment(self, name: str, namespace: str, options: dict[str, Any] | None, timeout: float) -> None:
        with _errors():
            self._api.delete_namespaced_custom_object(
                constants.GROUP,
                constants.VERSION,
                namespace,
                constants.EXPERIMENT_PLURAL,
                name,
                body=options,
                _request_timeout=timeout,
            )

    def get_suggestion(self, name: str, namespace: str, timeout: float) -> Suggestion:
        return self._get(Suggestion, constants.SUGGESTION_PLURAL, name, namespace, timeout)

    def list_suggestions(self, namespace: str, timeout: float) -> list[Suggestion]:
        return self._list(Suggestion, constants.SUGGESTION_PLURAL, namespace, None, timeout)

    def get_trial(self, name: str, namespace: str, timeout: float) -> Trial:
        return self._get(Trial, constants.TRIAL_PLURAL, name, namespace, timeout)

    def list_trials(self, namespace: str, experiment_name: str | None, timeout: float) -> list[Trial]:
        selector = None if experiment_name is None else f"{constants.EXPERIMENT_LABEL}={experiment_name}"
        return self._list(Trial, constants.TRIAL_PLURAL, namespace, selector, timeout)

    def trial_logs(self, trial: Trial, namespace: str, follow: bool, timeout: float) -> Iterator[str]:
        core = client.CoreV1Api(self.api_client)
        name = trial.metadata.name if trial.metadata else ""
        with _errors():
            pods: list[Any] = core.list_namespaced_pod(
                namespace, label_selector=trial_logs.pod_selector(trial), _request_timeout=timeout
            ).items
        if not pods:
            raise NotFoundError(f"no Pod of Trial {namespace}/{name}")
        # a Job's retries: the latest attempt
        latest = max(pods, key=lambda p: p.metadata.creation_timestamp)
        pod_name = str(latest.metadata.name)
        options: dict[str, Any] = {}
        container = trial_logs.output_container(trial)
        if container is not None:
            options["container"] = container
        with _errors():
            if not follow:
                text = core.read_namespaced_pod_log(pod_name, namespace, _request_timeout=timeout, **options)
                yield from text.splitlines()
                return
            response = _when_started(
                lambda: core.read_namespaced_pod_log(
                    pod_name, namespace, follow=True, _preload_content=False, **options
                ),
                timeout,
            )
            try:
                yield from text_lines(response.stream())
            finally:
                response.release_conn()

    def _get(self, model: type[_M], plural: str, name: str, namespace: str, timeout: float) -> _M:
        with _errors():
            found = self._api.get_namespaced_custom_object(
                constants.GROUP, constants.VERSION, namespace, plural, name, _request_timeout=timeout
            )
        return model.from_api(found)

    def _list(self, model: type[_M], plural: str, namespace: str, selector: str | None, timeout: float) -> list[_M]:
        options: dict[str, Any] = {"_request_timeout": timeout}
        if selector is not None:
            options["label_selector"] = selector
        with _errors():
            found = self._api.list_namespaced_custom_object(
                constants.GROUP, constants.VERSION, namespace, plural, **options
            )
        return [model.from_api(item) for item in found.get("items") or ()]


def _when_started(read: Callable[[], Any], timeout: float) -> Any:
    """``read()`` once the container has started: following a Pod that is still being created
    (the API server answers 400 "waiting to start") waits for it, up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return read()
        except ApiException as exc:
            if exc.status != 400 or "waiting to start" not in _reason(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Map the client's exceptions onto the backend contract (see ``_base``)."""
    try:
        yield
    except ApiException as exc:
        reason = _reason(exc)
        if exc.status == 404:
            raise NotFoundError(reason) from exc
        if exc.status == 409:
            raise AlreadyExistsError(reason) from exc
        raise KatibError(f"HTTP {exc.status}: {reason}") from exc
    except (Urllib3Timeout, TimeoutError) as exc:
        raise TimeoutError(str(exc)) from exc
    except MaxRetryError as exc:
        # NewConnectionError subclasses urllib3's ConnectTimeoutError, yet means "refused".
        if isinstance(exc.reason, Urllib3Timeout) and not isinstance(exc.reason, NewConnectionError):
            raise TimeoutError(str(exc)) from exc
        raise KatibError(f"cannot reach the Kubernetes API server: {exc.reason}") from exc
    except HTTPError as exc:
        raise KatibError(f"cannot reach the Kubernetes API server: {exc}") from exc


def _reason(exc: ApiException) -> str:
    """The API server's ``Status.message`` when there is one, else the HTTP reason."""
    with contextlib.suppress(ValueError, TypeError):
        message = json.loads(exc.body or "").get("message")
        if message:
            return str(message)
    return str(exc.reason or exc)
