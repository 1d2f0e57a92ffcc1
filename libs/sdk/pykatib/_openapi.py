"""JSON from objects of OpenAPI-generated clients (``kubernetes.client``, ``kubeflow.katib.models``).

Such objects declare ``openapi_types`` (attribute → type) and ``attribute_map`` (attribute → JSON
key). Converting them by those two maps, as their own ``sanitize_for_serialization`` does, lets
``tune`` and ``create_experiment`` accept them without importing either package.
"""

from __future__ import annotations

import datetime
from typing import Any

from katib_core.models import KatibModel


def is_openapi_object(value: object) -> bool:
    return hasattr(value, "openapi_types") and hasattr(value, "attribute_map")


def to_json(value: Any) -> Any:
    """``value`` as plain JSON data: models by their JSON keys, ``None`` attributes left out."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, KatibModel):
        return value.to_api()
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if is_openapi_object(value):
        return {
            value.attribute_map[attr]: to_json(getattr(value, attr))
            for attr in value.openapi_types
            if getattr(value, attr) is not None
        }
    raise TypeError(f"cannot convert {type(value).__name__} to JSON")
