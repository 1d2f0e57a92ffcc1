from typing import Any

import pytest

from katib_core import patches
from katib_core.errors import ValidationError


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({"a": 1}, {"a": 1}, []),
        ({"a": 1}, {"a": 1.0}, []),
        ({"a": 1}, {"a": 2}, [{"op": "replace", "path": "/a", "value": 2}]),
        ({}, {"a": {"b": [1]}}, [{"op": "add", "path": "/a", "value": {"b": [1]}}]),
        ({"a": 1, "b": 2}, {"b": 2}, [{"op": "remove", "path": "/a"}]),
        ({"a": None}, {}, []),
        ({}, {"a": None}, []),
        (
            {"l": {"x/y": "1", "t~": "2"}},
            {"l": {"x/y": "3", "t~": "2"}},
            [{"op": "replace", "path": "/l/x~1y", "value": "3"}],
        ),
        ({"c": [{"n": 1}]}, {"c": [{"n": 1}, {"n": 2}]}, [{"op": "add", "path": "/c/-", "value": {"n": 2}}]),
        ({"c": [1, 2, 3]}, {"c": [1]}, [{"op": "remove", "path": "/c/2"}, {"op": "remove", "path": "/c/1"}]),
        (
            {"c": [{"e": []}]},
            {"c": [{"e": [{"name": "X"}]}]},
            [{"op": "add", "path": "/c/0/e/-", "value": {"name": "X"}}],
        ),
        ({"a": [1]}, {"a": {"b": 1}}, [{"op": "replace", "path": "/a", "value": {"b": 1}}]),
    ],
)
def test_diff(old: Any, new: Any, expected: list[dict[str, Any]]) -> None:
    ops = patches.diff(old, new)
    assert ops == expected

    def drop_nulls(doc: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in doc.items() if v is not None}

    assert drop_nulls(patches.apply(old, ops)) == drop_nulls(new)


def test_apply_does_not_touch_its_input_and_knows_test() -> None:
    doc = {"a": [1, 2]}
    out = patches.apply(doc, [{"op": "test", "path": "/a/0", "value": 1}, {"op": "add", "path": "/a/0", "value": 0}])
    assert out == {"a": [0, 1, 2]}
    assert doc == {"a": [1, 2]}


@pytest.mark.parametrize(
    "op",
    [
        {"op": "remove", "path": "/missing"},
        {"op": "add", "path": "/a/9", "value": 1},
        {"op": "move", "path": "/a"},
        {"op": "add", "path": "a"},
        {"op": "test", "path": "/a/0", "value": 5},
    ],
)
def test_apply_rejects_bad_operations(op: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=r"^patch\[0\]"):
        patches.apply({"a": [1]}, [op])


def test_pointer_escapes() -> None:
    assert (
        patches.pointer("metadata", "labels", "katib.kubeflow.org/trial")
        == "/metadata/labels/katib.kubeflow.org~1trial"
    )
    assert patches.pointer("a~b", 0) == "/a~0b/0"


def test_scalars_keep_json_types() -> None:
    assert patches.diff(1, True) == [{"op": "replace", "path": "", "value": True}]
    assert patches.diff(1, 1.0) == []
    assert patches.diff("1", 1) == [{"op": "replace", "path": "", "value": 1}]
