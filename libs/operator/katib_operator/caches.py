"""An in-memory copy of watched objects (an informer's store), fed by watch events and our own writes.

Objects are kept as API JSON (optionally trimmed) and parsed into models lazily, once per
resourceVersion. An older resourceVersion never replaces a newer one, so a watch event that
arrives after our own write of the same object cannot roll it back. Thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

M = TypeVar("M")
Key = tuple[str, str]  # (namespace, name)


def key_of(body: Mapping[str, Any]) -> Key:
    meta = body.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _version(body: Mapping[str, Any]) -> int | None:
    text = (body.get("metadata") or {}).get("resourceVersion")
    try:
        return int(str(text)) if text is not None else None
    except ValueError:
        return None


class ObjectCache(Generic[M]):
    """Objects of one resource by ``(namespace, name)``, with an optional label index.

    Args:
        parse: builds the model of an object (called lazily, once per stored version).
        trim: drops what readers never need before the object is stored (memory).
        index_label: keep an index by ``(namespace, value of this label)``.
    """

    def __init__(
        self,
        parse: Callable[[dict[str, Any]], M],
        *,
        trim: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        index_label: str | None = None,
    ) -> None:
        self._parse = parse
        self._trim = trim
        self._label = index_label
        self._raw: dict[Key, dict[str, Any]] = {}
        self._models: dict[Key, M] = {}
        self._index: dict[Key, set[str]] = {}
        self._lock = threading.Lock()

    def apply(self, event_type: str | None, body: Mapping[str, Any]) -> bool:
        """Apply a watch event (``None``/ADDED/MODIFIED/DELETED); False if it was older than what is stored."""
        if event_type == "DELETED":
            self.remove(key_of(body))
            return True
        return self.put(body)

    def put(self, body: Mapping[str, Any]) -> bool:
        """Store ``body`` unless an object with a newer resourceVersion is stored already."""
        key = key_of(body)
        raw = self._trim(dict(body)) if self._trim else dict(body)
        with self._lock:
            old = self._raw.get(key)
            if old is not None:
                new_v, old_v = _version(raw), _version(old)
                if new_v is not None and old_v is not None and new_v < old_v:
                    return False
                self._unindex(key, old)
            self._raw[key] = raw
            self._models.pop(key, None)
            if self._label:
                value = ((raw.get("metadata") or {}).get("labels") or {}).get(self._label)
                if value is not None:
                    self._index.setdefault((key[0], value), set()).add(key[1])
        return True

    def remove(self, key: Key) -> None:
        with self._lock:
            old = self._raw.pop(key, None)
            self._models.pop(key, None)
            if old is not None:
                self._unindex(key, old)

    def _unindex(self, key: Key, old: Mapping[str, Any]) -> None:
        if not self._label:
            return
        value = ((old.get("metadata") or {}).get("labels") or {}).get(self._label)
        if value is None:
            return
        index_key = (key[0], str(value))
        names = self._index.get(index_key)
        if names is not None:
            names.discard(key[1])
            if not names:
                self._index.pop(index_key, None)

    def raw(self, key: Key) -> dict[str, Any] | None:
        with self._lock:
            return self._raw.get(key)

    def get(self, key: Key) -> M | None:
        """The parsed model of ``key``, None if absent."""
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                return model
            raw = self._raw.get(key)
        if raw is None:
            return None
        model = self._parse(raw)
        with self._lock:
            if self._raw.get(key) is raw:
                self._models[key] = model
        return model

    def indexed(self, namespace: str, value: str) -> list[M]:
        """Models whose index label is ``value`` in ``namespace``."""
        with self._lock:
            names = sorted(self._index.get((namespace, value), ()))
        found = (self.get((namespace, name)) for name in names)
        return [model for model in found if model is not None]

    def keys(self) -> Iterable[Key]:
        with self._lock:
            return list(self._raw)

    def __len__(self) -> int:
        with self._lock:
            return len(self._raw)
