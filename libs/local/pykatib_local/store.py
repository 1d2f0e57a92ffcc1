"""Local mode's object store: Experiments, Trials and Suggestions as JSON files in a work directory.

What the API server is to the controllers, this is to the local runner: objects keyed by kind,
namespace and name, with ``uid``, ``creationTimestamp``, ``resourceVersion`` and ``generation``
kept the Kubernetes way, label selection, and writes that are atomic (temp file + rename) so a
crash or Ctrl-C never leaves half an object. Layout::

    <workdir>/<namespace>/<experiment>/experiment.json
    <workdir>/<namespace>/<experiment>/suggestion.json
    <workdir>/<namespace>/<experiment>/trials/<trial>.json
    <workdir>/<namespace>/<experiment>/trials/<trial>/output.log   (the trial process's output)
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from katib_core import constants, timestamps
from katib_core.errors import AlreadyExistsError, NotFoundError
from katib_core.models import Experiment, Suggestion, Trial
from katib_core.models._base import KatibModel

M = TypeVar("M", bound=KatibModel)
_FILES = {constants.EXPERIMENT_KIND: "experiment.json", constants.SUGGESTION_KIND: "suggestion.json"}


class LocalStore:
    """Thread-safe store of Katib objects under ``root`` (one process owns a work directory)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._versions = itertools.count(int(timestamps.utc_now().timestamp() * 1000))
        #: path → (file identity, parsed object): a pass over N trials re-reads only changed files.
        self._parsed: dict[Path, tuple[tuple[int, int, int], KatibModel]] = {}

    # -- paths -------------------------------------------------------------------------------

    def experiment_dir(self, namespace: str, experiment: str) -> Path:
        return self.root / namespace / experiment

    def trial_dir(self, namespace: str, experiment: str, trial: str) -> Path:
        """Where a trial process runs and writes its output."""
        return self.experiment_dir(namespace, experiment) / "trials" / trial

    def _path(self, kind: str, namespace: str, name: str, experiment: str | None) -> Path:
        if kind == constants.TRIAL_KIND:
            if experiment is None:
                found = self._find_trial(namespace, name)
                if found is None:
                    raise NotFoundError(f"Trial {namespace}/{name} not found")
                return found
            return self.experiment_dir(namespace, experiment) / "trials" / f"{name}.json"
        return (
            self.experiment_dir(namespace, name if kind == constants.EXPERIMENT_KIND else experiment or name)
            / _FILES[kind]
        )

    def _find_trial(self, namespace: str, name: str) -> Path | None:
        for path in (self.root / namespace).glob(f"*/trials/{name}.json"):
            return path
        return None

    # -- CRUD --------------------------------------------------------------------------------

    def create(self, obj: M, *, experiment: str | None = None) -> M:
        """Store a new object; its metadata gets uid, creation time, resourceVersion, generation 1."""
        kind, namespace, name = _identity(obj)
        with self._lock:
            path = self._path(kind, namespace, name, experiment or _experiment_of(obj))
            if path.exists():
                raise AlreadyExistsError(f"{kind} {namespace}/{name} already exists")
            stored = obj.model_copy(deep=True)
            assert stored.metadata is not None  # type: ignore[attr-defined]
            meta = stored.metadata  # type: ignore[attr-defined]
            meta.uid = meta.uid or str(uuid.uuid4())
            meta.creation_timestamp = timestamps.format_nano(timestamps.utc_now().replace(microsecond=0))
            meta.generation = 1
            meta.resource_version = str(next(self._versions))
            _write(path, stored)
            return stored

    def get(self, model: type[M], namespace: str, name: str, *, experiment: str | None = None) -> M:
        """The stored object. Raises NotFoundError."""
        kind = _kind_of(model)
        with self._lock:
            path = self._path(kind, namespace, name, experiment)
            try:
                return self._load(model, path)
            except FileNotFoundError:
                raise NotFoundError(f"{kind} {namespace}/{name} not found") from None

    def update(self, obj: M, *, spec_changed: bool = False, experiment: str | None = None) -> M:
        """Replace a stored object (status and spec alike); bumps resourceVersion (and generation)."""
        kind, namespace, name = _identity(obj)
        with self._lock:
            path = self._path(kind, namespace, name, experiment or _experiment_of(obj))
            if not path.exists():
                raise NotFoundError(f"{kind} {namespace}/{name} not found")
            meta = obj.metadata  # type: ignore[attr-defined]
            changes: dict[str, Any] = {"resource_version": str(next(self._versions))}
            if spec_changed:
                changes["generation"] = (meta.generation or 1) + 1
            # Shallow: the caller's object is left as it was, and nothing is deep-copied per write.
            stored = obj.model_copy(update={"metadata": meta.model_copy(update=changes)})
            _write(path, stored)
            return stored

    def delete_experiment(self, namespace: str, name: str) -> None:
        """Remove an Experiment with its Suggestion, Trials and their outputs."""
        with self._lock:
            directory = self.experiment_dir(namespace, name)
            if not (directory / _FILES[constants.EXPERIMENT_KIND]).exists():
                raise NotFoundError(f"Experiment {namespace}/{name} not found")
            shutil.rmtree(directory)
            self._parsed = {p: v for p, v in self._parsed.items() if directory not in p.parents}

    def list_experiments(self, namespace: str | None = None) -> list[Experiment]:
        with self._lock:
            return [self._load(Experiment, p) for p in sorted(self._glob(namespace, f"*/{_FILES['Experiment']}"))]

    def list_suggestions(self, namespace: str | None = None) -> list[Suggestion]:
        with self._lock:
            return [self._load(Suggestion, p) for p in sorted(self._glob(namespace, f"*/{_FILES['Suggestion']}"))]

    def list_trials(self, namespace: str | None = None, *, experiment: str | None = None) -> list[Trial]:
        """Trials of a namespace (or all), optionally of one experiment, oldest first."""
        pattern = f"{experiment or '*'}/trials/*.json"
        with self._lock:
            trials = [self._load(Trial, p) for p in self._glob(namespace, pattern)]
        return sorted(
            trials,
            key=lambda t: (t.metadata.creation_timestamp or "", t.metadata.name or "") if t.metadata else ("", ""),
        )

    def namespaces(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _glob(self, namespace: str | None, pattern: str) -> Iterator[Path]:
        for ns in [namespace] if namespace else self.namespaces():
            yield from (self.root / ns).glob(pattern)

    def _load(self, model: type[M], path: Path) -> M:
        """A stored object, parsed once per version of its file (callers must not mutate it)."""
        stat = path.stat()
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = self._parsed.get(path)
        if cached is not None and cached[0] == key and isinstance(cached[1], model):
            return cached[1]
        parsed = model.from_api(json.loads(path.read_text()))
        self._parsed[path] = (key, parsed)
        return parsed


def _identity(obj: KatibModel) -> tuple[str, str, str]:
    kind = _kind_of(type(obj))
    meta = obj.metadata  # type: ignore[attr-defined]
    if meta is None or not meta.name or not meta.namespace:
        raise ValueError(f"a {kind} needs metadata.name and metadata.namespace")
    return kind, meta.namespace, meta.name


def _kind_of(model: type[KatibModel]) -> str:
    kinds: Mapping[type[KatibModel], str] = {
        Experiment: constants.EXPERIMENT_KIND,
        Trial: constants.TRIAL_KIND,
        Suggestion: constants.SUGGESTION_KIND,
    }
    return kinds[model]


def _experiment_of(obj: KatibModel) -> str | None:
    labels = obj.metadata.labels if obj.metadata is not None else None  # type: ignore[attr-defined]
    return (labels or {}).get(constants.EXPERIMENT_LABEL)


def _write(path: Path, obj: KatibModel) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".tmp-{os.getpid()}-{threading.get_ident()}")
    data: dict[str, Any] = obj.to_api()
    # One line: json's C encoder serves only indent=None (a Trial's pretty-printed JSON cost ~5 ms per write).
    temporary.write_text(json.dumps(data, sort_keys=True) + "\n")
    os.replace(temporary, path)
