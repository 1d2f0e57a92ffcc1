"""What a KatibClient backend must do: the primitives every public method is built from.

Contract (both backends; ``KatibClient`` maps these to upstream's messages):

- objects come back as ``katib_core.models`` snapshots; later changes never mutate them;
- a missing object raises ``NotFoundError``; creating an existing name raises ``AlreadyExistsError``;
- a call that ran out of ``timeout`` raises ``TimeoutError``; any other failure of the API raises
  ``KatibError`` with the reason; invalid input raises ``ValidationError`` before anything is sent.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from katib_core.errors import KatibError
from katib_core.models import Experiment, Suggestion, Trial
from pykatib import _reporting, _wire


def text_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Lines of a byte stream read in arbitrary chunks (a followed log), each yielded once whole."""
    pending = b""
    for data in chunks:
        *lines, pending = (pending + data).split(b"\n")
        yield from (line.decode(errors="replace") for line in lines)
    if pending:
        yield pending.decode(errors="replace")


class Backend(abc.ABC):
    """Where Experiments live: a Kubernetes API server, or this machine (local mode)."""

    #: The namespace used when a call passes none.
    namespace: str
    #: Whether this backend's trials can always import pykatib (tune() then installs nothing for Push).
    trials_have_pykatib: bool = False
    #: Whether a wait that ends Succeeded explains failed trials: a warning quoting the first one,
    #: and RuntimeError when none succeeded (local mode, where the user's script is the only window
    #: onto the run). The Kubernetes backend keeps upstream's plain return.
    explains_outcomes: bool = False
    #: ``wait_for_experiment_condition``'s limit when the caller gives none (None: wait until it ends;
    #: local mode, where the experiment runs in this process and a deadline would strand it).
    default_wait_timeout: float | None = 600
    #: The longest a wait sleeps between looks (None: the caller's ``polling_interval``).
    max_polling_interval: float | None = None

    def progress(self, name: str, namespace: str) -> contextlib.AbstractContextManager[Callable[[], None]]:
        """A view of the Experiment's progress while a wait runs: entering it returns ``tick``,
        called after each look (the default shows nothing)."""
        return contextlib.nullcontext(lambda: None)

    def interrupt(self, name: str, namespace: str) -> str | None:
        """A wait was interrupted (Ctrl-C, an error): stop what this process runs for the
        Experiment, and say so in one line (None: nothing runs here; a cluster carries on)."""
        return None

    @abc.abstractmethod
    def create_experiment(self, experiment: Experiment, namespace: str, timeout: float) -> Experiment:
        """Store a new Experiment; return it as stored (``generateName`` resolved)."""

    @abc.abstractmethod
    def get_experiment(self, name: str, namespace: str, timeout: float) -> Experiment: ...

    @abc.abstractmethod
    def list_experiments(self, namespace: str, timeout: float) -> list[Experiment]: ...

    @abc.abstractmethod
    def patch_experiment(self, name: str, namespace: str, patch: dict[str, Any], timeout: float) -> Experiment:
        """Apply a JSON merge patch (RFC 7386) to an Experiment; return the result."""

    @abc.abstractmethod
    def delete_experiment(self, name: str, namespace: str, options: dict[str, Any] | None, timeout: float) -> None:
        """Delete an Experiment (``options``: Kubernetes ``DeleteOptions`` JSON)."""

    @abc.abstractmethod
    def get_suggestion(self, name: str, namespace: str, timeout: float) -> Suggestion: ...

    @abc.abstractmethod
    def list_suggestions(self, namespace: str, timeout: float) -> list[Suggestion]: ...

    @abc.abstractmethod
    def get_trial(self, name: str, namespace: str, timeout: float) -> Trial: ...

    @abc.abstractmethod
    def list_trials(self, namespace: str, experiment_name: str | None, timeout: float) -> list[Trial]:
        """Trials of the namespace, or only those labelled ``katib.kubeflow.org/experiment=<experiment_name>``."""

    def trial_logs(self, trial: Trial, namespace: str, follow: bool, timeout: float) -> Iterator[str]:
        """The output of a Trial's training, line by line; ``follow``: until the training ends.

        Raises:
            NotFoundError: nothing ran for the Trial (yet), or its output is gone.
        """
        raise KatibError(f"{type(self).__name__} keeps no trial output")

    def get_trial_metrics(self, name: str, db_manager_address: str | None, timeout: float) -> list[_wire.MetricLog]:
        """Every metric log of a trial, from the DB manager (``_transport.RpcError`` on failure)."""
        return _reporting.dbmanager_client(db_manager_address).get(name, timeout=timeout)
