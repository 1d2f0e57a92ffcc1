"""The base of every CRD model: camelCase JSON, unknown fields kept, API JSON on demand."""

from __future__ import annotations

import difflib
from typing import Any, TypeVar

import pydantic
from pydantic.alias_generators import to_camel

#: ``typing.Self`` needs Python 3.11; the client and local mode run on 3.10 too.
_Model = TypeVar("_Model", bound="KatibModel")


class KatibModel(pydantic.BaseModel):
    """A Katib API object: snake_case attributes, camelCase JSON, nothing a user wrote is lost.

    Fields Katib does not know (or a newer Katib added) are kept as extra attributes and written
    back by ``to_api``; unset fields are ``None`` and omitted, as Go's ``omitempty`` does.
    """

    model_config = pydantic.ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    @classmethod
    def from_api(cls: type[_Model], data: dict[str, Any]) -> _Model:
        """Parse API JSON (camelCase keys) into a model."""
        return cls.model_validate(data)

    def to_api(self) -> dict[str, Any]:
        """The API JSON of this object: camelCase keys, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def unknown_fields(model: KatibModel, path: str = "") -> list[tuple[str, str | None]]:
    """Fields a user wrote that Katib's API does not define (kept as extras), as ``(path, the
    known field it most resembles)``, depth first — kubectl's strict field validation, for Katib."""
    found: list[tuple[str, str | None]] = []
    known = {field.alias or name: name for name, field in type(model).model_fields.items()}
    for name in model.model_extra or {}:
        close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
        found.append((f"{path}.{name}" if path else name, close[0] if close else None))
    for alias, name in known.items():
        value = getattr(model, name)
        where = f"{path}.{alias}" if path else alias
        if isinstance(value, KatibModel):
            found += unknown_fields(value, where)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, KatibModel):
                    found += unknown_fields(item, f"{where}[{index}]")
    return found


def first_error(error: pydantic.ValidationError) -> tuple[str, str]:
    """The field path (``spec.parameters[0].name``) and message of pydantic's first error, without
    pydantic's help URL or its internal names, for messages people read."""
    first = error.errors(include_url=False)[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".")
    return where, first["msg"]


class ObjectMeta(KatibModel):
    """Kubernetes ``metadata``: the fields Katib and the SDK read; everything else is kept as is."""

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    finalizers: list[str] | None = None
    owner_references: list[dict[str, Any]] | None = None


class Condition(KatibModel):
    """One entry of ``status.conditions`` (Experiment, Trial and Suggestion share the shape)."""

    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    last_update_time: str | None = None
    last_transition_time: str | None = None


class NamedValue(KatibModel):
    """A ``{name, value}`` pair (algorithm settings, parameter assignments, metric strategies)."""

    name: str | None = None
    value: str | None = None
