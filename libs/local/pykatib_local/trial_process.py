"""One local trial as a process: its own process group, its own log file, a clean stop.

Started from the primary container of the trial's rendered job (command + args + env, image
ignored). stdout and stderr go to ``<trial dir>/output.log``; StdOut-collector trials are parsed
from it afterwards. ``stop`` sends SIGTERM to the whole process group and SIGKILL after a grace
period, so children (torchrun workers, a shell's python) go too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LOG_NAME = "output.log"
_TAIL_BYTES = 4000


@dataclass(frozen=True)
class Command:
    """What to run: argv, extra environment (on top of the runner's), working directory."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path | None = None


class TrialProcess:
    """A running trial; ``poll()`` returns its exit code once it has finished."""

    def __init__(self, command: Command, directory: Path, *, base_env: Mapping[str, str] = os.environ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / LOG_NAME
        cwd = command.cwd if command.cwd is not None and command.cwd.is_dir() else directory
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(  # - the user's own trial command
                list(command.argv),
                env={**base_env, **command.env},
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid = self._proc.pid
        self.started = time.time()

    def poll(self) -> int | None:
        return self._proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self._proc.wait(timeout)

    def stop(self, grace: float = 10.0) -> int:
        """Terminate the process group (SIGKILL after ``grace`` seconds); return the exit code."""
        if self._proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                return self._proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
        return self._proc.wait()

    def log_tail(self, max_bytes: int = _TAIL_BYTES) -> str:
        """The end of the trial's output, for the Failed condition's message."""
        return tail(self.log_path, max_bytes)

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)


def tail(path: Path, max_bytes: int = _TAIL_BYTES) -> str:
    """The last ``max_bytes`` of a text file (from a line start when possible)."""
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - max_bytes))
            data = file.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    if size > max_bytes and "\n" in text:
        text = text.split("\n", 1)[1]
    return text.rstrip()


def describe_exit(code: int) -> str:
    """``exit code 3`` or ``killed by SIGKILL`` for a Popen return code."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


def shell_argv(command: Sequence[str] | None, args: Sequence[str] | None) -> tuple[str, ...]:
    """A container's command + args as an argv (Kubernetes: args alone run the image's entrypoint)."""
    argv = [*(command or ()), *(args or ())]
    if not argv:
        raise ValueError("the trial's container has neither command nor args (an image entrypoint can't run locally)")
    return tuple(argv)
