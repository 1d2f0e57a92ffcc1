"""Finding and watching the training process through ``/proc``, as Katib's collector does.

In a Pod with ``shareProcessNamespace`` the collector sees every container's processes; each
container's first process has parent pid 0 (its parent lives outside the namespace), pid 1 is the
pause container. The training is the process whose command line holds the completion marker the
pod webhook wrapped it with (``echo completed > <dir>/$$.pid``), else the first container process.
Outside a shared namespace (a node running Pods as plain processes, local runs) only the marker
identifies it — the topmost process carrying it, so a subshell is not mistaken for its shell.

When the training process exits, ``<dir>/<pid>.pid`` says how: ``completed``, ``early-stopped``
(we stopped it), anything else or nothing (it failed). A zombie counts as exited, and a reused pid
is recognised by its start time.
"""

from __future__ import annotations

import enum
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from katib_core import training_markers

PROC = Path("/proc")


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    #: Clock ticks since boot at which it started (field 22 of ``/proc/<pid>/stat``).
    started: int
    cmdline: str


def read(pid: int, proc: Path = PROC) -> Process | None:
    """The process ``pid`` if it is alive (not a zombie), else None."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if not fields or fields[0] in ("Z", "X"):
        return None
    return Process(pid, int(fields[1]), int(fields[19]), raw.replace(b"\0", b" ").decode(errors="replace").strip())


def scan(proc: Path = PROC) -> Iterator[Process]:
    """Every live process visible in ``proc``, by pid."""
    pids = sorted(int(entry.name) for entry in proc.iterdir() if entry.name.isdigit())
    for pid in pids:
        found = read(pid, proc)
        if found is not None:
            yield found


@dataclass(frozen=True)
class Training:
    """What to wait for: the training's shell (None once it is known to have finished) and, with
    wait-all, the Pod's other container processes."""

    main: Process | None
    others: tuple[Process, ...]


def find_training(directory: str, *, wait_all: bool, fallback: bool, proc: Path = PROC) -> Training | None:
    """The marked training process, else (with ``fallback``) the first container process, else None.

    With ``wait_all`` the other container processes (parent pid 0) are to be waited for too.
    """
    me = os.getpid()
    processes = [p for p in scan(proc) if p.pid not in (1, me) and p.cmdline]
    marker = training_markers.command_line_marker(directory)
    marked = {p.pid for p in processes if marker in p.cmdline}
    roots = [p for p in processes if p.ppid == 0]
    topmost_marked = [p for p in processes if p.pid in marked and p.ppid not in marked]
    main = topmost_marked[0] if topmost_marked else (roots[0] if roots and fallback else None)
    if main is None:
        return None
    return Training(main, others(main.pid, wait_all=wait_all, proc=proc))


def others(main_pid: int | None, *, wait_all: bool, proc: Path = PROC) -> tuple[Process, ...]:
    """The Pod's container processes besides ``main_pid`` (and this one), when waiting for all."""
    if not wait_all:
        return ()
    me = os.getpid()
    return tuple(p for p in scan(proc) if p.ppid == 0 and p.pid not in (1, me, main_pid) and p.cmdline)


def alive(process: Process, proc: Path = PROC) -> bool:
    """Whether ``process`` still runs (the same process: a reused pid does not count)."""
    now = read(process.pid, proc)
    return now is not None and now.started == process.started


class Outcome(enum.Enum):
    COMPLETED = "completed"
    EARLY_STOPPED = "early-stopped"
    FAILED = "failed"


def outcome(directory: str, pid: int) -> tuple[Outcome, str]:
    """What the marker file of the exited training ``pid`` says, with a message."""
    marker = Path(directory) / f"{pid}.pid"
    try:
        content = marker.read_text().strip()
    except OSError as exc:
        return Outcome.FAILED, f"training container is failed: unable to read {marker}: {exc.strerror}"
    if content == training_markers.COMPLETED:
        return Outcome.COMPLETED, "training completed"
    if content == training_markers.EARLY_STOPPED:
        return Outcome.EARLY_STOPPED, "training was stopped early"
    if content == training_markers.FAILED:
        return Outcome.FAILED, f"training container is failed ({marker} says {content})"
    return (
        Outcome.FAILED,
        f"unable to find marker: {training_markers.COMPLETED} in {marker} (it holds {content[:80]!r})",
    )


def finished_before(directory: str) -> tuple[Outcome, str] | None:
    """The outcome of a training that exited before the collector looked (its marker file), if any."""
    try:
        markers = sorted(Path(directory).glob("*.pid"))
    except OSError:
        return None
    for marker in markers:
        try:
            content = marker.read_text().strip()
        except OSError:
            continue
        if content == training_markers.COMPLETED:
            return Outcome.COMPLETED, "training completed"
        if content == training_markers.FAILED:
            return Outcome.FAILED, f"training container is failed ({marker} says {content})"
    return None


def mark_early_stopped(directory: str, pid: int) -> None:
    """Tell the wrapped shell that its command's failure is an early stop."""
    (Path(directory) / f"{pid}.pid").write_text(training_markers.EARLY_STOPPED)


def descendants(pid: int, proc: Path = PROC) -> list[Process]:
    """Every live process below ``pid``, deepest last."""
    children: dict[int, list[Process]] = {}
    for process in scan(proc):
        children.setdefault(process.ppid, []).append(process)
    found: list[Process] = []
    queue = [pid]
    while queue:
        for child in children.get(queue.pop(0), ()):
            found.append(child)
            queue.append(child.pid)
    return found


def terminate_below(pid: int, proc: Path = PROC) -> list[int]:
    """SIGTERM every process below ``pid`` (the shell itself lives on to report the early stop)."""
    signalled: list[int] = []
    for process in descendants(pid, proc):
        try:
            os.kill(process.pid, signal.SIGTERM)
            signalled.append(process.pid)
        except ProcessLookupError:
            continue
    return signalled
