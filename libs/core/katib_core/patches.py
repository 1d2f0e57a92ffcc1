"""JSON Patch (RFC 6902) between two JSON documents, and applying one.

The admission webhook answers with the difference between the object it received and the object
core decided on (``diff``); tests and local mode replay a patch with ``apply``. ``null`` and a
missing key are the same here (Kubernetes drops nulls), so a round trip through the typed models
yields no patch noise. Lists are compared by index: a grown list gets ``add …/-`` operations.
"""

from __future__ import annotations

import copy
from typing import Any

from katib_core.errors import ValidationError

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


def apply(document: Any, patch: JsonPatch) -> Any:
    """Return a copy of ``document`` with ``patch`` applied (add, remove, replace, test).

    Raises:
        ValidationError: an operation is malformed or its path does not exist.
    """
    result = copy.deepcopy(document)
    for index, op in enumerate(patch):
        field = f"patch[{index}]"
        kind, path = op.get("op"), op.get("path")
        if not isinstance(path, str) or (path and not path.startswith("/")):
            raise ValidationError(f"{field}.path", f"{path!r} is not a JSON pointer")
        if path == "":
            if kind in ("add", "replace"):
                result = copy.deepcopy(op.get("value"))
                continue
            raise ValidationError(field, f"{kind!r} on the whole document")
        parent, key = _parent(result, path, field)
        if kind == "add":
            _add(parent, key, copy.deepcopy(op.get("value")), field)
        elif kind == "remove":
            _take(parent, key, field)
        elif kind == "replace":
            _take(parent, key, field)
            _add(parent, key, copy.deepcopy(op.get("value")), field)
        elif kind == "test":
            if _get(parent, key, field) != op.get("value"):
                raise ValidationError(field, f"test failed at {path}")
        else:
            raise ValidationError(f"{field}.op", f"{kind!r} is not supported")
    return result


def _tokens(path: str) -> list[str]:
    return [token.replace("~1", "/").replace("~0", "~") for token in path.split("/")[1:]]


def _parent(document: Any, path: str, field: str) -> tuple[Any, str]:
    *walk, last = _tokens(path)
    node = document
    for token in walk:
        node = _get(node, token, field)
    return node, last


def _get(node: Any, token: str, field: str) -> Any:
    if isinstance(node, dict) and token in node:
        return node[token]
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    raise ValidationError(field, f"path segment {token!r} does not exist")


def _add(node: Any, token: str, value: Any, field: str) -> None:
    if isinstance(node, dict):
        node[token] = value
    elif isinstance(node, list) and token == "-":
        node.append(value)
    elif isinstance(node, list) and token.isdigit() and int(token) <= len(node):
        node.insert(int(token), value)
    else:
        raise ValidationError(field, f"cannot add at {token!r}")


def _take(node: Any, token: str, field: str) -> Any:
    _get(node, token, field)
    return node.pop(int(token) if isinstance(node, list) else token)
