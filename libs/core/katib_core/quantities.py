"""Kubernetes resource quantities (``1``, ``0.5``, ``"500m"``, ``"1Gi"``, ``"2e3"``) as the API server reads them.

YAML writes ``cpu: 1`` and ``nvidia.com/gpu: 1`` as numbers; Kubernetes accepts a JSON number
wherever a quantity goes, and so does Katib v0.19 (its validator tests a ``{cpu: 1}`` limit).
Typed clients, however, declare quantities as strings. ``normalize_resources`` turns every
``resources.limits``/``resources.requests`` value of an object into the string Kubernetes would
parse, and names the field of any value that is not a quantity. The grammar is Kubernetes'
(``k8s.io/apimachinery/pkg/api/resource``): a signed decimal number, then a binary suffix
(``Ki``…``Ei``), a decimal suffix (``n u m k M G T P E``) or an exponent (``e3``, ``E-2``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from katib_core.errors import ValidationError

_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))" r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?",
    re.ASCII,
)
_BINARY: Final = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: Final = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_GROUPS: Final = ("limits", "requests")


def text(value: object, *, field: str) -> str:
    """``value`` as the quantity string Kubernetes stores (numbers written out, strings checked).

    Raises:
        ValidationError: naming ``field``, if ``value`` is not a quantity.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValidationError(field, f"{value!r} is not a quantity (a number or a string such as 500m or 1Gi)")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(field, f"{value!r} is not a quantity")
        written = format(Decimal(repr(value)), "f")
        return written.rstrip("0").rstrip(".") if "." in written else written
    if _QUANTITY.fullmatch(value) is None:
        raise ValidationError(field, f"{value!r} is not a quantity (a number or a string such as 500m or 1Gi)")
    return value


def parse(value: object, *, field: str) -> Decimal:
    """The amount ``value`` stands for (``"1Gi"`` → 1073741824, ``"500m"`` → 0.5).

    Raises:
        ValidationError: naming ``field``, if ``value`` is not a quantity.
    """
    match = _QUANTITY.fullmatch(text(value, field=field))
    assert match is not None  # text() checked it
    number, suffix = Decimal(match.group("number")), match.group("suffix") or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix])
    return number.scaleb(int(suffix[1:])) if suffix else number


def whole_count(value: object, *, field: str) -> int:
    """A count of devices (GPUs): a quantity that is a whole number >= 0 (``1``, ``"2"``, ``"1000m"``).

    Raises:
        ValidationError: naming ``field``.
    """
    amount = parse(value, field=field)
    if amount < 0:
        raise ValidationError(field, "must not be negative")
    if amount != amount.to_integral_value():
        raise ValidationError(field, f"{value!r} is not a whole number")
    return int(amount)


def normalize_resources(document: Mapping[str, Any], *, field: str) -> dict[str, Any]:
    """A copy of ``document`` whose every ``resources.limits``/``.requests`` value is a quantity string.

    Raises:
        ValidationError: the path of the first value that is not a quantity, below ``field``
            (``….containers[0].resources.limits[nvidia.com/gpu]``, as Kubernetes writes it).
    """
    result = _normalized(document, field)
    assert isinstance(result, dict)
    return result


def _normalized(node: Any, path: str) -> Any:
    if isinstance(node, list):
        return [_normalized(item, f"{path}[{index}]") for index, item in enumerate(node)]
    if not isinstance(node, Mapping):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        where = f"{path}.{key}"
        if key == "resources" and isinstance(value, Mapping):
            result[key] = {
                group: (
                    _amounts(amounts, f"{where}.{group}")
                    if group in _GROUPS
                    else _normalized(amounts, f"{where}.{group}")
                )
                for group, amounts in value.items()
            }
        else:
            result[key] = _normalized(value, where)
    return result


def _amounts(amounts: Any, path: str) -> Any:
    if not isinstance(amounts, Mapping):
        return amounts  # not a resource list: the typed check reports it
    return {name: text(amount, field=f"{path}[{name}]") for name, amount in amounts.items()}


__all__ = ["normalize_resources", "parse", "text", "whole_count"]
