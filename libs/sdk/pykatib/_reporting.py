"""``report_metrics``: the push path from training code to the DB manager.

Process-wide state (one client per DB manager address, the timestamp source, the buffered
sender) lives in one ``_Process`` object, created on import and replaced in a forked child.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import numbers
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Protocol

from katib_core import constants, observations, trial_stopping
from pykatib import _metrics, _wire
from pykatib._buffering import BufferedSender, Point
from pykatib._dbmanager import DBManagerClient, new_report_key
from pykatib._early_stop import EarlyStop
from pykatib._transport import RpcError, open_channel

_log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 120
#: Seconds a SIGTERM'd process spends pushing buffered points (Kubernetes' default grace is 30 s).
TERM_FLUSH_SECONDS = 20.0
#: Exit status of a process whose buffered points could not all be pushed at exit.
EXIT_METRICS_LOST = 3
_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


class _Process:
    """What ``report_metrics`` keeps between calls in this process."""

    def __init__(self) -> None:
        self._clients: dict[str, DBManagerClient] = {}
        self._lock = threading.Lock()
        self.stamps = _metrics.StampSource()
        self._sender: BufferedSender | None = None
        self._early: EarlyStop | None = None
        self._closed = False

    def early_stop(self) -> EarlyStop:
        """The trial's stop rules and verdict (env read on first use)."""
        if self._early is None:
            with self._lock:
                if self._early is None:
                    self._early = EarlyStop()
        return self._early

    def client(self, address: str) -> DBManagerClient:
        """The cached client (one channel) for ``address``."""
        found = self._clients.get(address)
        if found is None:
            with self._lock:
                found = self._clients.get(address)
                if found is None:
                    found = self._clients[address] = DBManagerClient(open_channel(address))
        return found

    def sender(self) -> BufferedSender:
        if self._sender is None:
            with self._lock:
                if self._sender is None:
                    self._sender = BufferedSender(self.client)
                    atexit.register(self._flush_at_exit)
                    self._flush_on_sigterm()
        return self._sender

    def _flush_on_sigterm(self) -> None:
        """Push buffered points when the pod is deleted (or early-stopped): SIGTERM runs no atexit.

        Only from the main thread (Python's rule for handlers), and never over a handler the
        program installed itself.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        signal.signal(signal.SIGTERM, self._terminate)

    def _terminate(self, signum: int, frame: object) -> None:
        signal.signal(signum, signal.SIG_DFL)
        sender = self._sender
        if sender is not None and not self._closed:
            try:
                sender.flush(min(sender.longest_timeout + 5, TERM_FLUSH_SECONDS))
            except RuntimeError as exc:
                _log.error("%s", exc)
        os.kill(os.getpid(), signum)  # die of the signal, as without the handler (exit status 143)

    def flush(self, timeout: float | None) -> None:
        if self._sender is not None:
            self._sender.flush(timeout)

    def close(self) -> None:
        """Close every channel (the process's state is not used afterwards)."""
        self._closed = True
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.channel.close()

    def _flush_at_exit(self) -> None:
        sender = self._sender
        if sender is None or self._closed:
            return
        try:
            sender.flush(sender.longest_timeout + 5)
        except RuntimeError as exc:
            # Points were lost: the trial must not look like it succeeded with all its metrics.
            _log.error("%s", exc)
            sys.stderr.write(f"pykatib: {exc}; exiting with status {EXIT_METRICS_LOST}\n")
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_METRICS_LOST)


_process = _Process()


def _forget_after_fork() -> None:
    # A child inherits neither the sender thread nor usable channels.
    global _process  # noqa: PLW0603 - process-wide by nature; replaced only here
    _process = _Process()


os.register_at_fork(after_in_child=_forget_after_fork)


def resolve_address(address: str | None = None) -> str:
    """The address to push to: the argument, else env ``KATIB_DB_MANAGER_ADDRESS``, else Katib's default."""
    return address or os.environ.get(constants.DB_MANAGER_ADDRESS_ENV) or constants.DEFAULT_DB_MANAGER_ADDRESS


def current_namespace() -> str:
    """The pod's namespace from its service account, or ``default`` outside a pod (read lazily)."""
    try:
        with open(_NAMESPACE_FILE, encoding="utf-8") as file:
            return file.readline().strip() or "default"
    except OSError:
        return "default"


def dbmanager_client(address: str | None = None) -> DBManagerClient:
    """The process's cached client for ``address`` (see ``resolve_address``)."""
    return _process.client(resolve_address(address))


def report_metrics(
    metrics: Mapping[str, object],
    db_manager_address: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    step: int | None = None,
    block: bool = True,
) -> bool:
    """Push metrics of the current Trial to the Katib DB manager.

    Args:
        metrics: metric name → value; each value must be accepted by ``float()``.
        db_manager_address: ``HOST:PORT``; default env ``KATIB_DB_MANAGER_ADDRESS``, else
            ``katib-db-manager.kubeflow:6789``.
        timeout: seconds to keep retrying (jittered backoff) while the DB manager is unavailable.
        step: optional training step, stored as metric ``pykatib.step`` at the same timestamp.
        block: ``False`` queues the metrics and returns at once; a background thread pushes them
            (see ``flush``); they are pushed at interpreter exit at the latest.

    Returns:
        True when this report met the trial's early-stopping rules (``should_stop()`` is then
        True): stop training; the process is stopped after a grace period otherwise. False
        otherwise (upstream returns None).

    Raises:
        ValueError: env ``KATIB_TRIAL_NAME`` is not set, or a value cannot be converted to float,
            or a metric name or ``step`` is invalid.
        RuntimeError: the metrics could not be stored before ``timeout`` (``block=True`` only), or
            ``timeout`` is not positive (as kubeflow-katib, whose gRPC deadline has then passed).
    """
    trial_name = os.environ.get(constants.TRIAL_NAME_ENV)
    if not trial_name:
        raise ValueError("The Trial name is not passed to environment variables")
    observations.check_trial_name(trial_name, field=constants.TRIAL_NAME_ENV)
    if not isinstance(timeout, numbers.Real) or math.isnan(timeout):
        raise ValueError(f"timeout must be a number of seconds, not {timeout!r}")
    address = resolve_address(db_manager_address)
    pairs = _metrics.pairs(metrics, step)
    if timeout <= 0:  # as kubeflow-katib: a deadline already past fails the push, after validation
        raise RuntimeError(
            f"Unable to push metrics to Katib DB for Trial {current_namespace()}/{trial_name}. "
            f"Exception: the timeout of {timeout!r} s left no time to push"
        )
    early = _process.early_stop()
    stop = early.feed(pairs)
    if stop:  # stored with the metrics that met the rules: one request, one verdict
        pairs = (*pairs, (trial_stopping.MARKER_METRIC, trial_stopping.MARKER_VALUE))
    micros = _process.stamps.next_micros()
    if not block:
        _process.sender().submit(Point(address, trial_name, micros, pairs, float(timeout)))
        if stop:
            _process.flush(timeout)
            early.stop_later()
        return stop
    stamp = _metrics.format_micros(micros)
    logs = [_wire.encode_metric_log(stamp, name, value) for name, value in pairs]
    try:
        _process.client(address).report(trial_name, logs, key=new_report_key(), timeout=timeout)
    except RpcError as exc:
        raise RuntimeError(
            f"Unable to push metrics to Katib DB for Trial {current_namespace()}/{trial_name}. Exception: {exc}"
        ) from exc
    if stop:
        _log.info("early stopped: trial %s met its stop rules", trial_name)
        early.stop_later()
    return stop


def should_stop() -> bool:
    """Whether this trial met its early-stopping rules (a training loop checks it after reports)."""
    return _process.early_stop().stopped


def flush(timeout: float | None = None) -> None:
    """Wait until metrics reported with ``block=False`` are stored.

    Raises:
        RuntimeError: some buffered metrics could not be stored within their ``timeout`` (they
            are reported once, here), or ``timeout`` seconds passed first.
    """
    _process.flush(timeout)


class Reporter(Protocol):
    def __call__(self, metrics: Mapping[str, object], *, step: int | None = None) -> bool: ...


@contextlib.contextmanager
def buffered(db_manager_address: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> Iterator[Reporter]:
    """A reporting function that never blocks, flushed when the block ends.

    ::

        with katib.buffered() as report:
            for step in range(1000):
                report({"loss": loss}, step=step)
        # every point is stored here (RuntimeError otherwise)
    """

    def report(metrics: Mapping[str, object], *, step: int | None = None) -> bool:
        return report_metrics(metrics, db_manager_address, timeout, step=step, block=False)

    try:
        yield report
    except BaseException:
        with contextlib.suppress(RuntimeError):
            flush(timeout)
        raise
    flush(timeout)
