"""Kubernetes objects as JSON dicts, for any resource: create, get, patch, replace status, delete.

API errors map onto our exception types: 404 → ``NotFoundError``, 409 → ``AlreadyExistsError`` on
create and ``ConflictError`` on a stale write, 400/403/422 → ``KatibError`` (a request that will
not succeed as is), anything else → ``ApiUnavailableError`` (worth a retry). Writes carry the
resourceVersion they were decided on, so a decision made from a stale copy is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from katib_core.errors import AlreadyExistsError, KatibError, NotFoundError
from katib_operator import kubeapi
from katib_operator.kubeapi import ApiError, KubeApi

_MERGE = "application/merge-patch+json"


class ConflictError(KatibError):
    """The object changed since it was read (409 on a write with a resourceVersion): read again."""


class ApiUnavailableError(KatibError, ConnectionError):
    """The API server failed or could not be reached; retrying later may succeed."""


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource type: ``group`` (``""`` for the core group), ``version``, ``plural``."""

    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
        return kubeapi.path(self.group, self.version, self.plural, namespace, name, subresource)


def _error(exc: ApiError, what: str) -> Exception:
    if exc.status == 404:
        return NotFoundError(f"{what}: not found")
    if exc.status == 409:
        return ConflictError(f"{what}: {exc.reason}")
    if exc.status in (400, 403, 422):
        return KatibError(f"{what}: {exc}")
    return ApiUnavailableError(f"{what}: {exc}")


class Objects:
    """Objects of any resource through one ``KubeApi``."""

    def __init__(self, api: KubeApi) -> None:
        self._api = api

    def create(self, resource: Resource, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create ``body``; AlreadyExistsError if an object of that name exists."""
        name = (body.get("metadata") or {}).get("name")
        try:
            return self._api.request("POST", resource.path(namespace), body=dict(body))
        except ApiError as exc:
            if exc.status == 409:
                raise AlreadyExistsError(f"{resource.plural} {namespace}/{name} exists") from None
            raise _error(exc, f"create {resource.plural} {namespace}/{name}") from None

    def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        return self._call("GET", resource.path(namespace, name), f"get {resource.plural} {namespace}/{name}")

    def patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """JSON merge patch of the object (``resource_version`` makes it conditional)."""
        return self._call(
            "PATCH",
            resource.path(namespace, name),
            f"patch {resource.plural} {namespace}/{name}",
            body=_guarded(patch, resource_version),
            content_type=_MERGE,
        )

    def replace_status(self, resource: Resource, body: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
        """PUT ``status`` through the status subresource: it replaces the whole status (fields we dropped
        disappear), only if the object is still at ``body``'s resourceVersion (else ConflictError).
        The API server ignores everything but the status on this path."""
        meta = body.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        return self._call(
            "PUT",
            resource.path(namespace, name, "status"),
            f"update status of {resource.plural} {namespace}/{name}",
            body={**body, "status": dict(status)},
        )

    def delete(self, resource: Resource, namespace: str, name: str, *, propagation: str = "Background") -> None:
        """Delete (absent already is fine)."""
        try:
            self._api.request(
                "DELETE",
                resource.path(namespace, name),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation},
            )
        except ApiError as exc:
            if exc.status != 404:
                raise _error(exc, f"delete {resource.plural} {namespace}/{name}") from None

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return self._api.request(method, path, **kwargs)
        except ApiError as exc:
            raise _error(exc, what) from None


def _guarded(patch: Mapping[str, Any], resource_version: str | None) -> dict[str, Any]:
    body = dict(patch)
    if resource_version:
        meta = dict(body.get("metadata") or {})
        meta["resourceVersion"] = resource_version
        body["metadata"] = meta
    return body


def owner_reference(body: Mapping[str, Any], *, controller: bool = True) -> dict[str, Any]:
    """An ownerReference to ``body`` (GC deletes the owned object with it)."""
    meta = body.get("metadata") or {}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "controller": controller,
        "blockOwnerDeletion": True,
    }
