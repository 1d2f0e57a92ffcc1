"""Local mode's trial worker: one process that has imported pykatib forks each ``tune()`` trial.

A ``tune()`` trial is ``bash -c`` writing the objective's source to a file and running ``python -u``
on it: a new interpreter importing pykatib and grpcio, ~0.2 s before the objective's first line
on an idle machine (more when it is busy). Local mode runs these trials on this machine with this
interpreter, so a *zygote* — ``python -u -c`` started once per running Experiment with the trials'
environment, having imported pykatib's report path and grpcio (no channel, no thread) — forks a
child per trial instead. The child is the trial's own process, as before:

- its own pid, session and process group (``stop`` signals the group, then SIGKILL), its own exit
  status (the interpreter's: 0, a ``SystemExit`` code, 1 after a traceback, killed by a signal);
- stdout and stderr appended to the trial's ``output.log``, stdin ``/dev/null``, no other descriptor;
- the environment the command path gives (the runner's, then the trial's variables), its working
  directory, ``sys.argv``/``sys.path[0]``/``__file__`` of ``python -u <dir>/ephemeral_script.py``
  with the source bash would have written there (``objective_script``), ``__name__ == "__main__"``;
- channels are created after the fork (pykatib's reporting state is reset in a forked child), so
  ``report_metrics``, early-stopping verdicts and SIGTERM flushing behave as in a new interpreter.

What a fork shares with its zygote and a new interpreter would not: the hash seed of ``str``
(``PYTHONHASHSEED``), and modules already imported. Hence the runner only forks when every variable
Python, the dynamic loader, the C library or grpcio read at start-up (``startup_env``) is the zygote's;
otherwise — or for any other command, or when the zygote cannot start — it runs the command as before.
A forked trial also ends without Python's module teardown (``_run`` says why and what still runs).

Protocol (JSON lines): the zygote says ``{"ready": pid}`` once it has imported; the runner writes
``{"id", "source", "env", "cwd", "log"}`` to its stdin; the zygote answers ``{"id", "pid"}`` once
forked (or ``{"id", "error"}``) and ``{"id", "exit"}`` (a ``Popen.returncode``) once it has reaped
the child. EOF on its stdin ends the zygote, stopping what it still runs (the runner has gone).
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.machinery import SourceFileLoader
from pathlib import Path
from typing import IO, Any

from pykatib_local import objective_script
from pykatib_local.trial_process import tail

_log = logging.getLogger(__name__)

#: Variables read once at interpreter, loader or library start: a fork cannot take a trial's own.
_STARTUP_PREFIXES = ("PYTHON", "LD_", "LC_", "MALLOC_", "GRPC_")
_STARTUP_NAMES = frozenset({"LANG", "LANGUAGE", "TZ"})
#: What the zygote imports before forking: the trial's report path (``import pykatib`` and grpcio).
_PREIMPORTS = ("pykatib", "pykatib._transport._grpcio", "grpc")
_BOOT = (
    "import sys\n"
    "if not getattr(sys.flags, 'safe_path', False): del sys.path[0]\n"  # python -c put '' there; a trial has its dir
    "from pykatib_local.zygote import serve\n"
    "serve()\n"
)
_READY_TIMEOUT = 60.0
_KILL_GRACE = 10.0


def startup_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``env`` that only take effect when a process starts (see the module docstring)."""
    return {k: v for k, v in env.items() if k.startswith(_STARTUP_PREFIXES) or k in _STARTUP_NAMES}


# -- the runner's side ---------------------------------------------------------------------------


class ZygoteError(RuntimeError):
    """The zygote could not start, or has gone."""


class Zygote:
    """A running zygote (``start``), its trials (``spawn``), and its end (``close``)."""

    def __init__(self, env: Mapping[str, str], *, log_path: Path) -> None:
        self.env = dict(env)
        self._startup = startup_env(self.env)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self._proc = subprocess.Popen(  # this interpreter, importing pykatib_local from PYTHONPATH
                [sys.executable, "-u", "-c", _BOOT],
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        self._log_path = log_path
        if self._proc.stdin is None or self._proc.stdout is None:  # not with PIPE; for the type checker
            raise ZygoteError("the trial worker has no pipes")
        self._requests: IO[bytes] = self._proc.stdin
        self._replies: IO[bytes] = self._proc.stdout
        self._lock = threading.Lock()  # the trials table; never held while writing or reading the pipes
        self._write_lock = threading.Lock()
        self._trials: dict[int, ForkedTrial] = {}
        self._next_id = 0
        self._gone = False
        ready = threading.Event()
        self._reader = threading.Thread(target=self._read, args=(ready,), name="zygote-replies", daemon=True)
        self._reader.start()
        if not ready.wait(_READY_TIMEOUT) or self._gone:
            self.close()
            raise ZygoteError(f"the trial worker did not start; see {log_path}:\n{tail(log_path)}")

    @property
    def alive(self) -> bool:
        return not self._gone

    def accepts(self, env: Mapping[str, str]) -> bool:
        """Whether a trial with environment ``env`` can be forked from this zygote."""
        return startup_env(env) == self._startup

    def spawn(self, source: str, *, env: Mapping[str, str], cwd: Path, log_path: Path) -> ForkedTrial:
        """Start a trial running ``source``; returns at once (the fork happens in the zygote)."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        trial = ForkedTrial(log_path)
        with self._lock:
            if self._gone:
                raise ZygoteError("the trial worker has gone")
            self._next_id += 1
            key = self._next_id
            self._trials[key] = trial
        request = {"id": key, "source": source, "env": dict(env), "cwd": str(cwd), "log": str(log_path)}
        try:
            with self._write_lock:
                self._requests.write(json.dumps(request).encode() + b"\n")
                self._requests.flush()
        except (OSError, ValueError) as exc:  # ValueError: closed
            with self._lock:
                self._trials.pop(key, None)
            raise ZygoteError(f"the trial worker has gone: {exc}") from exc
        return trial

    def close(self, grace: float = 5.0) -> None:
        """End the zygote: EOF on its stdin (it stops what still runs), SIGKILL after ``grace``."""
        with self._write_lock, contextlib.suppress(OSError):
            self._requests.close()
        try:
            self._proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self._reader.join(grace)

    def _read(self, ready: threading.Event) -> None:
        for line in self._replies:
            reply = json.loads(line)
            if "ready" in reply:
                ready.set()
                continue
            with self._lock:
                trial = self._trials.get(reply["id"])
                if trial is not None and "exit" in reply:
                    del self._trials[reply["id"]]
            if trial is None:
                continue
            if "pid" in reply:
                trial.started_as(int(reply["pid"]))
            elif "error" in reply:
                trial.failed_to_start(str(reply["error"]))
            else:
                trial.exited(int(reply["exit"]))
        self._orphan()
        ready.set()

    def _orphan(self) -> None:
        """The zygote has gone: stop its trials (their statuses are lost) and fail them, saying why."""
        with self._lock:
            self._gone = True
            orphans, self._trials = list(self._trials.values()), {}
        for trial in orphans:
            trial.lost(f"pykatib: the trial worker (pid {self._proc.pid}) ended; see {self._log_path}")


class ForkedTrial:
    """A trial forked by the zygote, with ``TrialProcess``'s interface (``poll``, ``wait``, ``stop``)."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.started = time.time()
        self.pid: int | None = None
        self._forked = threading.Event()
        self._exited = threading.Event()
        self._code: int | None = None

    # the zygote's replies

    def started_as(self, pid: int) -> None:
        self.pid = pid
        self._forked.set()

    def failed_to_start(self, error: str) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"pykatib: cannot start the trial: {error}\n")
        self.exited(127)

    def exited(self, code: int) -> None:
        self._code = code
        self._forked.set()
        self._exited.set()

    def lost(self, why: str) -> None:
        if self.pid is not None:
            self._signal(signal.SIGKILL)
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(why + "\n")
        self.exited(-signal.SIGKILL)

    # TrialProcess's interface

    def poll(self) -> int | None:
        return self._code if self._exited.is_set() else None

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(f"trial process {self.pid}", timeout or 0.0)
        assert self._code is not None
        return self._code

    def stop(self, grace: float = _KILL_GRACE) -> int:
        """Terminate the trial's process group (SIGKILL after ``grace`` seconds); return the exit code."""
        if not self._exited.is_set():
            self._forked.wait(grace)
            self._signal(signal.SIGTERM)
            if not self._exited.wait(grace):
                self._signal(signal.SIGKILL)
        return self.wait()

    def log_tail(self, max_bytes: int = 4000) -> str:
        return tail(self.log_path, max_bytes)

    def _signal(self, sig: int) -> None:
        if self.pid is None or self._exited.is_set():
            return
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:  # forked, not yet its own group leader: the process itself
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)


# -- the zygote's side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Script:
    path: str
    source: str


def serve() -> None:
    """The zygote's main: fork a child per request until EOF; in a child, run its trial and exit."""
    for name in _PREIMPORTS:
        with contextlib.suppress(ImportError):
            __import__(name)
    script = _serve()
    os._exit(_run(script))


def _serve() -> _Script:
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, tuple[int, str]] = {}  # pid → (request id, script dir)
    pending = b""
    _reply({"ready": os.getpid()})
    while True:
        readable, _, _ = select.select([0, wake_r], [], [])
        if wake_r in readable:
            os.read(wake_r, 4096)
            _reap(children)
        if 0 not in readable:
            continue
        chunk = os.read(0, 1 << 20)
        if not chunk:
            _stop_all(children)
            os._exit(0)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            request = json.loads(line)
            script_dir = ""
            try:
                script_dir = tempfile.mkdtemp(dir=_existing_dir(request["env"].get("TMPDIR")))
                path = os.path.join(script_dir, objective_script.SCRIPT_NAME)
                with open(path, "w", encoding="utf-8") as out:
                    out.write(request["source"])
                pid = os.fork()
            except OSError as exc:
                if script_dir:
                    shutil.rmtree(script_dir, ignore_errors=True)
                _reply({"id": request["id"], "error": str(exc)})
                continue
            if pid == 0:
                _become_trial(request, (wake_r, wake_w))
                return _Script(path, request["source"])
            children[pid] = (request["id"], script_dir)
            _reply({"id": request["id"], "pid": pid})


def _become_trial(request: Mapping[str, Any], wake: tuple[int, int]) -> None:
    """In the child: the process ``subprocess.Popen(..., start_new_session=True)`` would have made."""
    os.setsid()
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for fd in wake:
        os.close(fd)
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.closerange(3, _max_fd())
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # recomputed from the trial's TMPDIR
    cwd = request["cwd"]
    os.chdir(cwd)


def _run(script: _Script) -> int:
    """Run the trial's source as ``python -u <path>`` would (a fresh ``__main__`` at ``path``); its exit status.

    The ending is the interpreter's (a traceback and 1, ``SystemExit``'s code, death by SIGINT after
    an uncaught ``KeyboardInterrupt``), then what finalization does that a program can observe:
    non-daemon threads are joined, atexit handlers run, stdout and stderr flushed. Module teardown
    is skipped (as in multiprocessing's forked children): it is most of a short trial's exit time.
    """
    main = types.ModuleType("__main__")
    main.__file__ = script.path
    main.__cached__ = None  # type: ignore[attr-defined]
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    main.__loader__ = SourceFileLoader("__main__", script.path)
    sys.modules["__main__"] = main
    sys.argv[:] = [script.path]
    sys.path.insert(0, os.path.dirname(script.path))
    sys.excepthook = _from_script(script.path)
    interrupted = False
    try:
        exec(compile(script.source, script.path, "exec"), main.__dict__)  # the trial's program
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException as exc:  # reported as the interpreter reports it
        sys.excepthook(type(exc), exc, exc.__traceback__)
        interrupted, code = isinstance(exc, KeyboardInterrupt), 1
    code = _finalize(code)
    if interrupted:  # as CPython: die of SIGINT, so the shell (here the runner) sees the interrupt
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return code


def _exit_code(exc: SystemExit) -> int:
    """The status ``sys.exit(x)`` gives: None is 0, an int itself, anything else printed and 1."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    with contextlib.suppress(Exception):
        print(exc.code, file=sys.stderr)
    return 1


def _finalize(code: int) -> int:
    """Py_FinalizeEx's observable part: join non-daemon threads, atexit, flush stdio."""
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
    try:
        atexit._run_exitfuncs()
    except SystemExit as exc:
        code = _exit_code(exc)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # as CPython: a failed flush at exit is status 120
            code = 120
    return code


def _from_script(path: str) -> Any:
    """An excepthook that prints tracebacks from the script's frame on, as ``python <path>`` shows them."""

    def hook(kind: type[BaseException], error: BaseException, tb: types.TracebackType | None) -> None:
        first = tb
        while first is not None and first.tb_frame.f_code.co_filename != path:
            first = first.tb_next
        if first is not None:  # the default hook prints the exception's own __traceback__
            error = error.with_traceback(first)
        sys.__excepthook__(kind, error, first or tb)

    return hook


def _reap(children: dict[int, tuple[int, str]]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        found = children.pop(pid, None)
        if found is None:
            continue
        request_id, script_dir = found
        shutil.rmtree(script_dir, ignore_errors=True)
        _reply({"id": request_id, "exit": os.waitstatus_to_exitcode(status)})


def _stop_all(children: Mapping[int, tuple[int, str]]) -> None:
    """The runner has gone: stop what still runs (its statuses have nowhere to go)."""
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + _KILL_GRACE
    remaining = dict(children)
    while remaining and time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.05)
        else:
            _, script_dir = remaining.pop(pid, (0, ""))
            if script_dir:
                shutil.rmtree(script_dir, ignore_errors=True)
    for pid, (_, script_dir) in remaining.items():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        shutil.rmtree(script_dir, ignore_errors=True)


def _reply(message: Mapping[str, Any]) -> None:
    data = json.dumps(message).encode() + b"\n"
    while data:
        data = data[os.write(1, data) :]


def _existing_dir(path: str | None) -> str | None:
    return path if path and os.path.isdir(path) else None


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (OSError, ValueError):
        return 1024


__all__ = ["ForkedTrial", "Zygote", "ZygoteError", "serve", "startup_env"]
