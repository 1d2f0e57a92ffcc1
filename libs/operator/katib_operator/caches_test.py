from typing import Any

from katib_operator.caches import ObjectCache


def obj(name: str, version: str, label: str | None = None, **extra: Any) -> dict[str, Any]:
    labels = {"exp": label} if label else {}
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": version, "labels": labels}, **extra}


def test_newer_versions_win_and_the_label_index_follows() -> None:
    parsed: list[str] = []

    def parse(body: dict[str, Any]) -> str:
        parsed.append(body["metadata"]["resourceVersion"])
        return str(body["metadata"]["resourceVersion"])

    cache: ObjectCache[str] = ObjectCache(
        parse, index_label="exp", trim=lambda b: {k: v for k, v in b.items() if k != "big"}
    )
    assert cache.put(obj("a", "5", "e1", big="x"))
    assert not cache.put(obj("a", "4", "e1"))  # a stale watch event after our own write
    assert cache.get(("ns", "a")) == "5"
    assert cache.get(("ns", "a")) == "5"
    assert parsed == ["5"]  # parsed once per version
    assert "big" not in (cache.raw(("ns", "a")) or {})
    cache.put(obj("b", "6", "e1"))
    assert cache.indexed("ns", "e1") == ["5", "6"]
    cache.put(obj("a", "7", "e2"))
    assert cache.indexed("ns", "e1") == ["6"]
    assert cache.indexed("ns", "e2") == ["7"]
    cache.apply("DELETED", obj("b", "8"))
    assert cache.indexed("ns", "e1") == []
    assert cache.get(("ns", "b")) is None
    assert len(cache) == 1
