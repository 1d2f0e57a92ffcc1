"""AdmissionReview in, AdmissionReview out: the three webhooks, over ``katib_core``.

Transport-free (``server.py`` does HTTP and TLS): ``Admission.review(path, body)`` returns the
response document for any body, including garbage — a malformed review is answered
``allowed: false`` with the reason, never with an exception. Reads from the cluster (owners of a
Pod, its Trial, a template ConfigMap) go through an injected ``ObjectReader``.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import pydantic
import yaml

from katib_core import constants, defaulting, patches, pod_injection, validation
from katib_core.errors import KatibError, ValidationError
from katib_core.models import Experiment, Trial, first_error
from katib_webhook.settings import COMPONENT_LABEL, AdmissionSettings

_log = logging.getLogger(__name__)

REVIEW_VERSIONS: Final = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
MUTATE_EXPERIMENT: Final = "/mutate-experiment"
VALIDATE_EXPERIMENT: Final = "/validate-experiment"
MUTATE_POD: Final = "/mutate-pod"
PATHS: Final = (MUTATE_EXPERIMENT, VALIDATE_EXPERIMENT, MUTATE_POD)
#: Pod → Job → Trial needs two hops; operators like JobSet add one or two more.
MAX_OWNER_DEPTH: Final = 5


class ReadError(KatibError, RuntimeError):
    """The API could not answer a read (not a 404: those read as ``None``)."""


class ObjectReader(Protocol):
    """Reads namespaced objects for the handlers (``kube.KubeReader`` in production)."""

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as API JSON, or None if it does not exist. Raises ReadError otherwise."""
        ...


@dataclass(frozen=True)
class Verdict:
    """A handler's answer: allowed (maybe with a patch) or denied with a code and message."""

    allowed: bool
    patch: patches.JsonPatch | None = None
    code: int = 200
    message: str = ""
    warnings: tuple[str, ...] = ()


class MalformedReviewError(ValidationError):
    """The body is not an AdmissionReview this webhook can answer."""


class Admission:
    """The three webhooks. ``reader`` None means no API: Pods are admitted unchanged."""

    def __init__(
        self,
        settings: AdmissionSettings,
        *,
        reader: ObjectReader | None,
        convert_batch_job: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.settings = settings
        self.reader = reader
        self._convert_batch_job = convert_batch_job

    async def review(self, path: str, body: bytes | None) -> dict[str, Any]:
        """The AdmissionReview answering ``body`` sent to ``path`` (always a valid response document)."""
        version, uid = REVIEW_VERSIONS[0], _best_effort_uid(body)
        try:
            version, uid, request = parse_review(body)
            verdict = await self._decide(path, request)
        except MalformedReviewError as exc:
            verdict = Verdict(False, code=400, message=f"malformed AdmissionReview: {exc}")
        except ValidationError as exc:  # an object the models cannot read
            verdict = Verdict(False, code=400, message=str(exc))
        except Exception as exc:  # the boundary: an answer, never a 500; the stack goes to the log
            _log.exception("admission %s failed (uid %s)", path, uid)
            verdict = Verdict(False, code=500, message=f"internal error in the Katib webhook: {exc!r}")
        return response(version, uid, verdict)

    async def _decide(self, path: str, request: Mapping[str, Any]) -> Verdict:
        if path == MUTATE_EXPERIMENT:
            return self.mutate_experiment(request)
        if path == VALIDATE_EXPERIMENT:
            return await self.validate_experiment(request)
        if path == MUTATE_POD:
            return await self.mutate_pod(request)
        raise MalformedReviewError("path", f"no webhook at {path!r} (serving {', '.join(PATHS)})")

    # -- Experiments ---------------------------------------------------------------------------

    def mutate_experiment(self, request: Mapping[str, Any]) -> Verdict:
        """Repair the official SDK's categorical bug, then apply Katib's defaults, as a JSON Patch."""
        if request.get("operation") not in ("CREATE", "UPDATE"):
            return Verdict(True)
        raw = _slim(_object(request, "object", constants.EXPERIMENT_KIND))
        try:
            repaired, moved = defaulting.repair_raw_experiment(raw)
        except (AttributeError, TypeError, KeyError):
            _parse(Experiment, raw)  # a field of the wrong type: the models name it (ValidationError)
            raise
        experiment = _parse(Experiment, repaired)
        defaulted = defaulting.default_experiment(experiment).to_api()
        warnings = tuple(f"{field}: categorical values moved to feasibleSpace.list" for field in moved)
        # kubectl's strict field validation, as warnings: Katib would ignore these fields silently.
        warnings += tuple(validation.unknown_spec_fields(experiment))
        return Verdict(True, patch=patches.diff(raw, defaulted), warnings=warnings)

    async def validate_experiment(self, request: Mapping[str, Any]) -> Verdict:
        """Katib's whole rule set; UPDATE also checks what may change."""
        if request.get("operation") not in ("CREATE", "UPDATE"):
            return Verdict(True)
        experiment = _parse(Experiment, _slim(_object(request, "object", constants.EXPERIMENT_KIND)))
        old = None
        if request.get("operation") == "UPDATE" and request.get("oldObject"):
            old = _parse(Experiment, _slim(_object(request, "oldObject", constants.EXPERIMENT_KIND)))
        namespace = str(request.get("namespace") or "")
        try:
            template = await self._config_map_template(experiment, namespace)
            validation.validate_experiment(
                experiment,
                old=old,
                settings=self.settings.validation,
                config_map_template=template,
                convert_batch_job=self._convert_batch_job,
            )
        except ValidationError as exc:
            return Verdict(False, code=400, message=str(exc))
        return Verdict(True)

    async def _config_map_template(self, experiment: Experiment, namespace: str) -> dict[str, Any] | None:
        source = (
            experiment.spec.trial_template.config_map if experiment.spec and experiment.spec.trial_template else None
        )
        if source is None or self.reader is None or not (source.config_map_name and source.template_path):
            return None
        field = "spec.trialTemplate.configMap"
        where = f"{source.config_map_namespace or namespace}/{source.config_map_name}"
        try:
            config_map = await self.reader.get(
                "v1", "ConfigMap", source.config_map_namespace or namespace, source.config_map_name
            )
        except ReadError as exc:
            raise ValidationError(field, f"unable to read ConfigMap {where}: {exc}") from None
        if config_map is None:
            raise ValidationError(field, f"ConfigMap {where} not found")
        text = (config_map.get("data") or {}).get(source.template_path)
        if text is None:
            raise ValidationError(
                f"{field}.templatePath", f"{source.template_path!r} is not a key of ConfigMap {where}"
            )
        try:
            template = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValidationError(
                f"{field}.templatePath", f"the template in ConfigMap {where} is not YAML: {exc}"
            ) from None
        if not isinstance(template, dict):
            raise ValidationError(f"{field}.templatePath", f"the template in ConfigMap {where} is not an object")
        return template

    # -- Pods ----------------------------------------------------------------------------------

    async def mutate_pod(self, request: Mapping[str, Any]) -> Verdict:
        """Labels and env for a Trial's Pods; the sidecar and wrapped command for pull kinds."""
        if request.get("operation") != "CREATE":
            return Verdict(True)
        pod = _object(request, "object", "Pod")
        _check_pod_shape(pod, request)
        user = (request.get("userInfo") or {}).get("username")
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if user in self.settings.excluded_users or COMPONENT_LABEL in labels or self.reader is None:
            return Verdict(True)
        namespace = str(request.get("namespace") or (pod.get("metadata") or {}).get("namespace") or "")
        trial_name = await self._find_trial(pod, namespace, depth=0)
        if trial_name is None:
            return Verdict(True)
        trial = await self._read_trial(namespace, trial_name)
        if isinstance(trial, Verdict):
            return trial
        try:
            ops = pod_injection.pod_patch(_slim(pod), trial, self.settings.injection)
        except ValidationError as exc:
            return Verdict(False, code=400, message=exc.reason)
        return Verdict(True, patch=ops)

    async def _read_trial(self, namespace: str, name: str) -> Trial | Verdict:
        """The Trial, or Katib's answer when it cannot be read: the Pod is refused (HTTP 500 there)."""
        assert self.reader is not None
        try:
            found = await self.reader.get(constants.API_VERSION, constants.TRIAL_KIND, namespace, name)
        except ReadError as exc:
            return Verdict(False, code=500, message=f"unable to get Trial {namespace}/{name}: {exc}")
        if found is None:
            return Verdict(False, code=500, message=f"unable to get Trial {namespace}/{name}: not found")
        trial: Trial = _parse(Trial, found)
        return trial

    async def _find_trial(self, obj: Mapping[str, Any], namespace: str, *, depth: int) -> str | None:
        """The Trial that owns ``obj``, directly or through owners (Pod → Job → Trial)."""
        name = pod_injection.trial_owner(obj)
        if name is not None or depth >= MAX_OWNER_DEPTH or self.reader is None:
            return name
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
            api_version, kind, owner_name = ref.get("apiVersion"), ref.get("kind"), ref.get("name")
            if not (isinstance(api_version, str) and isinstance(kind, str) and isinstance(owner_name, str)):
                continue
            try:
                owner = await self.reader.get(api_version, kind, namespace, owner_name)
            except ReadError as exc:  # not a Trial's (Katib: not a Katib job); the Pod is left alone
                _log.warning("owner %s %s/%s of a Pod is unreadable: %s", kind, namespace, owner_name, exc)
                continue
            if owner is not None and (found := await self._find_trial(owner, namespace, depth=depth + 1)):
                return found
        return None


def parse_review(body: bytes | None) -> tuple[str, str, Mapping[str, Any]]:
    """``(apiVersion, request uid, request)`` of an AdmissionReview body.

    Raises:
        MalformedReviewError: the body is not an AdmissionReview request.
    """
    if body is None:
        raise MalformedReviewError("body", "missing or too large")
    try:
        review = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedReviewError("body", f"not JSON ({exc})") from None
    if not isinstance(review, dict):
        raise MalformedReviewError("body", "not a JSON object")
    version = review.get("apiVersion")
    if version not in REVIEW_VERSIONS or review.get("kind") != "AdmissionReview":
        raise MalformedReviewError(
            "apiVersion", f"expected kind AdmissionReview of {REVIEW_VERSIONS[0]}, got {version!r}"
        )
    request = review.get("request")
    if not isinstance(request, dict):
        raise MalformedReviewError("request", "missing")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise MalformedReviewError("request.uid", "missing")
    return version, uid, request


def _best_effort_uid(body: bytes | None) -> str:
    """The request uid of a body that may be malformed elsewhere (the API server matches on it)."""
    try:
        review = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        return ""
    request = review.get("request") if isinstance(review, dict) else None
    uid = request.get("uid") if isinstance(request, dict) else None
    return uid if isinstance(uid, str) else ""


def _check_pod_shape(pod: Mapping[str, Any], request: Mapping[str, Any]) -> None:
    """The parts of a Pod (and request) the handler reads have the types a Pod's schema gives them.

    Raises:
        MalformedReviewError: naming the first field that does not.
    """

    def need(value: Any, kind: type, field: str, *, required: bool = False) -> None:
        if (required or value is not None) and not isinstance(value, kind):
            raise MalformedReviewError(field, f"must be {_TYPE_NAMES[kind]}, not {type(value).__name__}")

    need(request.get("userInfo"), dict, "request.userInfo")
    need((request.get("userInfo") or {}).get("username"), str, "request.userInfo.username")
    need(request.get("namespace"), str, "request.namespace")
    metadata = pod.get("metadata")
    need(metadata, dict, "request.object.metadata")
    metadata = metadata or {}
    for key in ("labels", "annotations"):
        need(metadata.get(key), dict, f"request.object.metadata.{key}")
        for name, value in (metadata.get(key) or {}).items():
            need(value, str, f"request.object.metadata.{key}[{name}]")
    need(metadata.get("namespace"), str, "request.object.metadata.namespace")
    need(metadata.get("ownerReferences"), list, "request.object.metadata.ownerReferences")
    for index, ref in enumerate(metadata.get("ownerReferences") or []):
        need(ref, dict, f"request.object.metadata.ownerReferences[{index}]", required=True)
    spec = pod.get("spec")
    need(spec, dict, "request.object.spec", required=True)
    for group in ("containers", "initContainers", "volumes"):
        items = (spec or {}).get(group)
        need(items, list, f"request.object.spec.{group}")
        for index, item in enumerate(items or []):
            field = f"request.object.spec.{group}[{index}]"
            need(item, dict, field, required=True)
            for key in ("env", "volumeMounts", "command", "args"):
                need(item.get(key), list, f"{field}.{key}")
            for position, var in enumerate(item.get("env") or []):
                need(var, dict, f"{field}.env[{position}]", required=True)


_TYPE_NAMES: Final[dict[type, str]] = {dict: "an object", list: "a list", str: "a string"}


def _object(request: Mapping[str, Any], key: str, kind: str) -> dict[str, Any]:
    obj = request.get(key)
    if not isinstance(obj, dict):
        raise MalformedReviewError(f"request.{key}", "missing")
    if obj.get("kind") not in (None, kind):
        raise MalformedReviewError(f"request.{key}.kind", f"this webhook admits {kind}, not {obj.get('kind')!r}")
    return obj


def _slim(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without ``metadata.managedFields``: no rule reads them, and they are most of a small
    object (patches computed on the slim object apply to the full one unchanged)."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or "managedFields" not in metadata:
        return obj
    return {**obj, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}


def _parse(model: type[Experiment] | type[Trial], data: dict[str, Any]) -> Any:
    try:
        return model.from_api(data)
    except pydantic.ValidationError as exc:
        where, message = first_error(exc)
        raise ValidationError(where or model.__name__, message) from None


def response(version: str, uid: str, verdict: Verdict) -> dict[str, Any]:
    """The AdmissionReview document carrying ``verdict``."""
    answer: dict[str, Any] = {"uid": uid, "allowed": verdict.allowed}
    if verdict.patch:
        answer["patchType"] = "JSONPatch"
        answer["patch"] = base64.b64encode(json.dumps(verdict.patch, separators=(",", ":")).encode()).decode()
    if not verdict.allowed:
        answer["status"] = {"code": verdict.code, "message": verdict.message, "reason": _REASONS.get(verdict.code, "")}
    if verdict.warnings:
        answer["warnings"] = list(verdict.warnings)
    return {"apiVersion": version, "kind": "AdmissionReview", "response": answer}


_REASONS: Final = {400: "BadRequest", 403: "Forbidden", 500: "InternalError"}
