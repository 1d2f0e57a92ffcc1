"""JSON Patch (RFC 6902) between two JSON documents.

The admission webhook answers with the difference between the object it received and the object
core decided on (``diff``); tests replay a patch with the ``jsonpatch`` library, an independent
RFC 6902 implementation. ``null`` and a missing key are the same here (Kubernetes drops nulls),
so a round trip through the typed models yields no patch noise, nor does ``1`` becoming ``1.0``.
Lists are compared by index: a grown list gets ``add …/-`` operations. ``jsonpatch.make_patch``
does neither and is 8x slower on a Pod (docs/design.md), so the diff stays ours.
"""

from __future__ import annotations

import copy
from typing import Any

JsonPatch = list[dict[str, Any]]


def pointer(*parts: str | int) -> str:
    """A JSON Pointer (RFC 6901) to ``parts``: ``pointer("metadata", "labels", "a/b")`` → ``/metadata/labels/a~1b``."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def diff(old: Any, new: Any) -> JsonPatch:
    """Operations that turn ``old`` into ``new`` (``apply(old, diff(old, new)) == new``, nulls aside).

    Equal objects and arrays are skipped whole (Python equality, so a nested ``1`` → ``true``
    change goes unseen; defaulting never makes one).
    """
    ops: JsonPatch = []
    _diff(old, new, "", ops)
    return ops


def _diff(old: Any, new: Any, path: str, ops: JsonPatch) -> None:
    if isinstance(old, dict | list) and old == new:
        return  # the common case, compared in C
    if isinstance(old, dict) and isinstance(new, dict):
        _diff_objects(old, new, path, ops)
    elif isinstance(old, list) and isinstance(new, list):
        _diff_arrays(old, new, path, ops)
    elif not _same(old, new):
        ops.append({"op": "replace", "path": path, "value": copy.deepcopy(new)})


def _diff_objects(old: dict[str, Any], new: dict[str, Any], path: str, ops: JsonPatch) -> None:
    for key, value in old.items():
        if value is not None and new.get(key) is None:
            ops.append({"op": "remove", "path": path + pointer(key)})
    for key, value in new.items():
        if value is None:
            continue
        if old.get(key) is None:
            ops.append({"op": "add", "path": path + pointer(key), "value": copy.deepcopy(value)})
        else:
            _diff(old[key], value, path + pointer(key), ops)


def _diff_arrays(old: list[Any], new: list[Any], path: str, ops: JsonPatch) -> None:
    common = min(len(old), len(new))
    for index in range(common):
        _diff(old[index], new[index], f"{path}/{index}", ops)
    for value in new[common:]:
        ops.append({"op": "add", "path": f"{path}/-", "value": copy.deepcopy(value)})
    for index in range(len(old) - 1, common - 1, -1):
        ops.append({"op": "remove", "path": f"{path}/{index}"})


def _same(old: Any, new: Any) -> bool:
    # 1 == 1.0 == True in Python; JSON keeps booleans apart from numbers, but not ints from floats.
    if isinstance(old, bool) or isinstance(new, bool):
        return type(old) is type(new) and old == new
    if isinstance(old, int | float) and isinstance(new, int | float):
        return old == new
    return type(old) is type(new) and bool(old == new)
