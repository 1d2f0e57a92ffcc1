from typing import Any

import jsonpatch
import pytest
from hypothesis import given
from hypothesis import strategies as st

from katib_core import patches


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

    assert drop_nulls(jsonpatch.apply_patch(old, ops)) == drop_nulls(new)


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


_JSON = st.recursive(
    st.booleans() | st.integers(-5, 5) | st.text("ab/~", max_size=3),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text("ab/~", max_size=3), inner, max_size=4),
    max_leaves=12,
)


@given(_JSON, _JSON)
def test_jsonpatch_replays_every_diff(old: Any, new: Any) -> None:
    """An independent RFC 6902 implementation turns ``old`` into ``new`` with our operations."""
    assert jsonpatch.apply_patch(old, patches.diff(old, new)) == new
