"""The webhook's Kubernetes API calls, with the official (synchronous) client.

``KubeReader`` reads any namespaced object by apiVersion/kind (plural names come from API
discovery, cached) in a thread executor, so admission never blocks the event loop;
``patch_ca_bundle`` puts a generated CA into the webhook configurations;
``batch_job_round_trip`` is Katib's "does this Job survive the typed model" check.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from katib_webhook.admission import ReadError

_log = logging.getLogger(__name__)
#: What an API call can raise besides a 404.
API_ERRORS = (ApiException, HTTPError, OSError)
ConfigError = config.ConfigException
#: Re-read discovery of a group/version at most this often when a kind is missing from it.
_REDISCOVER_SECONDS = 30.0


def connect(kubeconfig: str | None) -> client.ApiClient:
    """An API client from ``kubeconfig``, else the in-cluster service account.

    Raises:
        config.ConfigException: neither works.
    """
    if kubeconfig:
        api_client: client.ApiClient = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        return api_client
    config.load_incluster_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


def offline_client() -> client.ApiClient:
    """A client for (de)serialising models only; it never connects."""
    return client.ApiClient()


class KubeReader:
    """``admission.ObjectReader`` over ``api_client``; each read is limited to ``timeout`` seconds."""

    def __init__(self, api_client: client.ApiClient, *, timeout: float) -> None:
        self._core = client.CoreV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._timeout = timeout
        self._plurals: dict[str, tuple[float, dict[str, str]]] = {}  # group/version → (read at, kind → plural)

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._get, api_version, kind, namespace, name)

    def _get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        where = f"{kind} {namespace}/{name} ({api_version})"
        try:
            if api_version == "v1":  # the core group has typed readers only
                read = getattr(self._core, f"read_namespaced_{_snake(kind)}", None)
                if read is None:
                    return None
                response = read(name, namespace, _preload_content=False, _request_timeout=self._timeout)
            else:
                group, _, version = api_version.partition("/")
                plural = self._plural(group, version, kind)
                if plural is None:
                    return None  # a kind this cluster does not serve owns nothing of ours
                response = self._custom.get_namespaced_custom_object(
                    group, version, namespace, plural, name, _preload_content=False, _request_timeout=self._timeout
                )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise ReadError(f"GET {where}: {exc.status} {exc.reason}") from None
        except (HTTPError, OSError) as exc:
            raise ReadError(f"GET {where}: {exc}") from None
        found = json.loads(response.data)
        return found if isinstance(found, dict) else None

    def _plural(self, group: str, version: str, kind: str) -> str | None:
        key = f"{group}/{version}"
        cached = self._plurals.get(key)
        if cached is not None and (kind in cached[1] or time.monotonic() - cached[0] < _REDISCOVER_SECONDS):
            return cached[1].get(kind)
        try:
            # With _preload_content=False the raw response comes back (the typing says the model).
            response: Any = self._custom.get_api_resources(
                group, version, _preload_content=False, _request_timeout=self._timeout
            )
            listing = json.loads(response.data)
        except ApiException as exc:
            if exc.status != 404:
                raise
            listing = {}
        plurals = {
            r["kind"]: r["name"]
            for r in listing.get("resources") or ()
            if "/" not in r.get("name", "/") and r.get("namespaced")
        }
        self._plurals[key] = (time.monotonic(), plurals)
        return plurals.get(kind)


def _snake(kind: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()


def patch_ca_bundle(api_client: client.ApiClient, names: Sequence[str], ca_pem: bytes) -> list[str]:
    """Set ``caBundle`` of every webhook of the named mutating and validating configurations.

    Returns the configurations still missing (not created yet); raises ApiException on other errors.
    """
    api = client.AdmissionregistrationV1Api(api_client)
    bundle = base64.b64encode(ca_pem).decode()
    missing: list[str] = []
    for name in names:
        for kind, read, patch in (
            (
                "MutatingWebhookConfiguration",
                api.read_mutating_webhook_configuration,
                api.patch_mutating_webhook_configuration,
            ),
            (
                "ValidatingWebhookConfiguration",
                api.read_validating_webhook_configuration,
                api.patch_validating_webhook_configuration,
            ),
        ):
            try:
                current = read(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                missing.append(f"{kind}/{name}")
                continue
            ops = [
                {"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": bundle}
                for index in range(len(current.webhooks or ()))
            ]
            if ops:
                patch(name, ops)
                _log.info("caBundle of %s/%s set (%d webhooks)", kind, name, len(ops))
    return missing


def batch_job_round_trip(api_client: client.ApiClient) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A converter for ``validation.validate_experiment``: a Job through the typed ``V1Job`` and back."""
    # The public deserialize() changed its signature in kubernetes 37; the model walk did not.
    deserialize = api_client._ApiClient__deserialize  # type: ignore[attr-defined]

    def convert(job: dict[str, Any]) -> dict[str, Any]:
        typed = deserialize(job, "V1Job")
        result: dict[str, Any] = api_client.sanitize_for_serialization(typed)  # type: ignore[no-untyped-call]
        return result

    return convert
