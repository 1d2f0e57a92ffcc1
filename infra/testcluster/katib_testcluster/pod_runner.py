"""Run one Pod's containers as local processes and report its status like a kubelet.

What it does (and does not) honour, since there is no container runtime:
- the image picks the Python (`images`: ours run on the agent's interpreter, `python:3.X` and
  Katib's default images on a venv of the CPython they carry, any other cannot run); a container
  runs `command + args` (after `$(VAR)` expansion), never the image's entrypoint: with no
  `command`, `args` alone is the argv; with neither it cannot run;
- env from the Pod spec (`container_env`), plus HOME (the pod dir) and HOSTNAME (the pod name);
- `workingDir` if it exists on this machine, else the same path under `<pod dir>/rootfs`;
  by default the pod dir, which all containers of the pod share;
- init containers one after another, then all containers at once (sidecars included);
- `restartPolicy` Never, OnFailure and Always (restart after 1-10 s back-off);
- `emptyDir` volumes: a directory per volume, bind-mounted at each container's volumeMounts in a
  mount namespace of its own, removed when the Pod is deleted; `shareProcessNamespace`: one PID
  namespace for the Pod's containers (`pod_isolation`; both need root);
- other volume kinds, probes, resources, securityContext and pod-level `activeDeadlineSeconds`
  are ignored;
- deletion: SIGTERM to each process group, SIGKILL after the grace period, then the Pod is
  deleted with grace 0 (the kubelet's final step).
Output (stdout and stderr together) goes to `<pod dir>/logs/<container>.log`. `usage()` keeps each
container's CPU time (its process tree, from `wait4`) and peak RSS (its largest process), measured
by GNU time (`/usr/bin/time`, when installed, as the container's outermost process): the agent's
own `wait4` cannot tell it, since a child forked from the agent's big Python process starts with
the agent's high-water mark.
Used by `node_agent.NodeAgent`.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from katib_testcluster import container_env, images, pod_isolation

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.1
_DEFAULT_GRACE_SECONDS = 30.0  # the Pod default; used if the runner stops without a deletion
_MAX_BACKOFF_SECONDS = 10.0
_MERGE_PATCH = "application/merge-patch+json"
#: GNU time measures a container's peak RSS (`%M`: the largest process of its tree, in KiB).
_TIME = shutil.which("time", path="/usr/bin:/bin")


@dataclass(frozen=True)
class Usage:
    """Resources a container's processes used, summed over its exited runs.

    `max_rss_kib`: the largest process's peak over all runs; None without GNU time (or when no
    run reported one, e.g. every run was killed).
    """

    runs: int = 0
    cpu_seconds: float = 0.0
    max_rss_kib: int | None = None

    def add(self, rusage: Any, max_rss_kib: int | None) -> Usage:
        peaks = [p for p in (self.max_rss_kib, max_rss_kib) if p is not None]
        return Usage(
            runs=self.runs + 1,
            cpu_seconds=self.cpu_seconds + rusage.ru_utime + rusage.ru_stime,
            max_rss_kib=max(peaks) if peaks else None,
        )


@dataclass
class _Container:
    """One container's process and status bookkeeping."""

    spec: Mapping[str, Any]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    started_at: str | None = None
    terminated: dict[str, Any] | None = None
    last_terminated: dict[str, Any] | None = None
    waiting: dict[str, str] = field(default_factory=lambda: {"reason": "ContainerCreating"})
    restart_count: int = 0
    restart_at: float | None = None
    usage: Usage = field(default_factory=Usage)

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def rss_path(self) -> Path:
        """Where GNU time writes the peak RSS of the current run."""
        return self.log_path.with_name(f"{self.name}.maxrss")

    @property
    def running(self) -> bool:
        return self.popen is not None and self.terminated is None

    def status(self) -> dict[str, Any]:
        last = self.last_terminated
        if self.running:
            state: dict[str, Any] = {"running": {"startedAt": self.started_at}}
        elif self.terminated is not None and self.restart_at is None:
            state = {"terminated": self.terminated}
        else:  # not started yet, or waiting to restart
            state = {"waiting": self.waiting}
            last = self.terminated or last
        status: dict[str, Any] = {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": "",
            "ready": self.running,
            "started": self.running,
            "restartCount": self.restart_count,
            "state": state,
            "lastState": {"terminated": last} if last else {},
        }
        if self.popen is not None:
            status["containerID"] = f"process://{self.popen.pid}"
        return status


class PodRunner:
    """Runs one Pod in a thread; `terminate()` when the Pod is being deleted."""

    def __init__(
        self,
        pod: Mapping[str, Any],
        *,
        core: client.CoreV1Api,
        pod_dir: Path,
        environments: images.Environments,
        pod_ip: str = "127.0.0.1",
    ) -> None:
        self.namespace: str = pod["metadata"]["namespace"]
        self.name: str = pod["metadata"]["name"]
        self.uid: str = pod["metadata"]["uid"]
        self.dir = pod_dir
        self._pod = pod
        self._core = core
        self._environments = environments
        self._pod_ip = pod_ip
        spec = pod["spec"]
        self._restart_policy: str = spec.get("restartPolicy", "Always")
        self._volumes = pod_isolation.PodVolumes(spec, pod_dir)
        self._share_pids = bool(spec.get("shareProcessNamespace"))
        self._pid_namespace: pod_isolation.PidNamespace | None = None
        self._sandbox_error: str | None = None
        self._volumes_removed = False
        logs = pod_dir / "logs"
        self._init = [_Container(c, logs / f"{c['name']}.log") for c in spec.get("initContainers") or ()]
        self._main = [_Container(c, logs / f"{c['name']}.log") for c in spec["containers"]]
        self._start_time = _now()
        self._initialized = not self._init
        self._transitions: dict[str, tuple[str, str]] = {}
        self._last_status: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._grace: float | None = None  # set by terminate(); a later, shorter one wins
        self._delete = True
        self._finished = False
        self._thread = threading.Thread(target=self._run, name=f"pod-{self.namespace}/{self.name}", daemon=True)

    def start(self) -> None:
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        self._volumes.create()
        self._thread.start()

    def usage(self) -> dict[str, Usage]:
        """CPU time and peak RSS of each container's exited runs, by container name."""
        return {c.name: c.usage for c in (*self._init, *self._main)}

    def log_path(self, container: str | None = None) -> Path:
        """The log file of `container` (default: the Pod's first container)."""
        for c in (*self._main, *self._init):
            if container is None or c.name == container:
                return c.log_path
        raise KeyError(f"pod {self.namespace}/{self.name} has no container {container!r}")

    def may_write(self, container: str) -> bool:
        """Whether ``container`` may still write to its log: running, or waiting to (re)start."""
        for c in (*self._main, *self._init):
            if c.name == container:
                return self.alive and (c.running or c.terminated is None or c.restart_at is not None)
        return False

    def terminate(self, grace_seconds: float, *, delete_pod: bool = True) -> None:
        """Stop the processes (SIGTERM, SIGKILL after `grace_seconds`), then delete the Pod."""
        with self._lock:
            grace = max(grace_seconds, 0.0)
            self._grace = grace if self._grace is None else min(self._grace, grace)
            self._delete = self._delete and delete_pod
            self._stop.set()
            finished = self._finished
        if finished:
            self._remove_volumes()
        if finished and delete_pod:
            self._delete_pod()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._write_status()
            if self._share_pids:
                try:
                    self._pid_namespace = pod_isolation.PidNamespace()
                except OSError as exc:  # not root, or no util-linux: every container fails to start
                    self._sandbox_error = f"shareProcessNamespace: {exc}"
            if self._run_init_containers():
                self._initialized = True
                self._run_containers()
        except Exception:  # the thread must not die silently
            log.exception("pod %s/%s: runner crashed", self.namespace, self.name)
        finally:
            self._kill_all()
            if self._pid_namespace is not None:
                self._pid_namespace.stop()
            self._write_status()
            with self._lock:
                self._finished = True
                gone = self._stop.is_set()
                delete = gone and self._delete
            if gone:
                self._remove_volumes()
            if delete:
                self._delete_pod()

    def _run_init_containers(self) -> bool:
        for container in self._init:
            while not self._stop.is_set():
                self._step([container])
                if container.terminated is not None and container.restart_at is None:
                    break  # done: succeeded, or failed for good
                self._stop.wait(_POLL_SECONDS)
            if self._stop.is_set() or (container.terminated or {}).get("exitCode") != 0:
                return False
        return True

    def _run_containers(self) -> None:
        while not self._stop.is_set():
            self._step(self._main)
            if all(c.terminated is not None and c.restart_at is None for c in self._main):
                return
            self._stop.wait(_POLL_SECONDS)

    def _step(self, containers: list[_Container]) -> None:
        """Start, reap or restart processes, and write status when anything changed."""
        for container in containers:
            if container.restart_at is not None:
                if time.monotonic() >= container.restart_at:
                    self._launch(container)
            elif container.popen is None and container.terminated is None:
                self._launch(container)
            elif container.running and container.popen and _reap(container, block=False):
                self._record_exit(container, container.popen.returncode)
        self._write_status()

    def _launch(self, container: _Container) -> None:
        try:
            variables = container_env.resolve(self._pod, container.spec, core=self._core, pod_ip=self._pod_ip)
        except container_env.EnvError as exc:
            container.waiting = {"reason": "CreateContainerConfigError", "message": str(exc)}
            container.restart_at = time.monotonic() + 1.0  # the kubelet keeps retrying
            return
        argv = [
            container_env.expand(arg, variables)
            for arg in (container.spec.get("command") or []) + (container.spec.get("args") or [])
        ]
        try:
            mounts = self._volumes.mounts(container.spec, variables)
        except pod_isolation.VolumeError as exc:
            container.waiting = {"reason": "CreateContainerConfigError", "message": str(exc)}
            container.restart_at = time.monotonic() + 1.0
            return
        if container.terminated is not None:
            container.last_terminated, container.terminated = container.terminated, None
            container.restart_count += 1
        container.restart_at = None
        container.started_at = _now()
        if not argv:
            self._cannot_run(container, 127, "no command or args: the test node agent cannot run an image's entrypoint")
            return
        if self._sandbox_error is not None:
            self._cannot_run(container, 128, self._sandbox_error)
            return
        try:  # the first container of an image builds its venv: the image pull of this runtime
            runtime = self._environments.for_container(str(container.spec.get("image", "")), self._layer(container))
        except images.ImageError as exc:
            self._cannot_run(container, 128, str(exc))
            return
        env = {**runtime, "HOSTNAME": self.name, "HOME": str(self.dir), **variables}
        pids = self._pid_namespace.path if self._pid_namespace is not None else None
        command = pod_isolation.wrap_argv(argv, mounts, pids)
        if _TIME is not None:
            container.rss_path.unlink(missing_ok=True)
            command = [_TIME, "--quiet", "--format=%M", f"--output={container.rss_path}", "--", *command]
        try:
            with container.log_path.open("ab") as out:
                container.popen = subprocess.Popen(
                    command,
                    cwd=self._working_dir(container.spec),
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            self._cannot_run(container, 126 if isinstance(exc, PermissionError) else 127, str(exc))
            return
        pid = container.popen.pid
        log.info("pod %s/%s: started %s (pid %d): %s", self.namespace, self.name, container.name, pid, argv)

    def _cannot_run(self, container: _Container, code: int, message: str) -> None:
        container.popen = None
        container.terminated = {
            "exitCode": code,
            "reason": "ContainerCannotRun",
            "message": message,
            "startedAt": container.started_at,
            "finishedAt": _now(),
        }
        self._schedule_restart(container)

    def _record_exit(self, container: _Container, returncode: int) -> None:
        code = 128 - returncode if returncode < 0 else returncode  # killed by signal N → 128+N
        container.terminated = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": container.started_at,
            "finishedAt": _now(),
            "containerID": f"process://{container.popen.pid if container.popen else 0}",
        }
        log.info("pod %s/%s: %s exited with %d", self.namespace, self.name, container.name, code)
        self._schedule_restart(container)

    def _schedule_restart(self, container: _Container) -> None:
        code = (container.terminated or {}).get("exitCode", 0)
        policy = self._restart_policy
        if policy == "Always" or (policy == "OnFailure" and code != 0):
            backoff = min(2.0**container.restart_count, _MAX_BACKOFF_SECONDS)
            container.restart_at = time.monotonic() + backoff
            container.waiting = {"reason": "CrashLoopBackOff", "message": f"back-off {backoff:.0f}s"}

    def _layer(self, container: _Container) -> Path:
        """Where a container of a venv image gets its own venv (its writable layer)."""
        return self.dir / "layers" / container.name

    def _working_dir(self, spec: Mapping[str, Any]) -> Path:
        wanted = spec.get("workingDir")
        if not wanted:
            return self.dir
        if os.path.isdir(wanted):
            return Path(wanted)
        path = self.dir / "rootfs" / str(wanted).lstrip("/")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _kill_all(self) -> None:
        """SIGTERM every live process group, SIGKILL what is left after the grace period."""
        live = [(c, c.popen) for c in (*self._init, *self._main) if c.running and c.popen]
        for _, popen in live:
            _signal_group(popen, signal.SIGTERM)
        began = time.monotonic()
        # Re-read the grace period each round: a force delete (grace 0) cuts a running wait short.
        while not all(_reap(container, block=False) for container, _ in live):
            grace = _DEFAULT_GRACE_SECONDS if self._grace is None else self._grace
            if time.monotonic() - began >= grace:
                break
            time.sleep(_POLL_SECONDS)
        for container, popen in live:
            _signal_group(popen, signal.SIGKILL)  # the group's children too, even if the leader exited
            _reap(container, block=True)
            self._record_exit(container, popen.returncode)
            container.restart_at = None

    def _write_status(self) -> None:
        status = self._status()
        if status == self._last_status:
            return
        try:
            self._core.patch_namespaced_pod_status(
                self.name, self.namespace, {"status": status}, _content_type=_MERGE_PATCH
            )
        except ApiException as exc:
            if exc.status == 404:
                self._stop.set()  # the Pod is gone (force-deleted): stop its processes
                return
            log.warning("pod %s/%s: status update failed: %s", self.namespace, self.name, exc)
            return
        self._last_status = status

    def _status(self) -> dict[str, Any]:
        main = self._main
        if all(c.terminated is not None and c.restart_at is None for c in main) or self._init_failed():
            failed = self._init_failed() or any(c.terminated and c.terminated["exitCode"] for c in main)
            phase = "Failed" if failed else "Succeeded"
        elif any(c.popen is not None for c in main):
            phase = "Running"
        else:
            phase = "Pending"
        all_running = all(c.running for c in main)
        ready_reason = "PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady"
        conditions = [
            self._condition("Initialized", self._initialized, "ContainersNotInitialized"),
            self._condition("Ready", all_running, ready_reason),
            self._condition("ContainersReady", all_running, ready_reason),
            self._condition("PodScheduled", True, ""),
        ]
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": self._pod_ip,
            "podIP": self._pod_ip,
            "podIPs": [{"ip": self._pod_ip}],
            "startTime": self._start_time,
            "containerStatuses": [c.status() for c in main],
        }
        if self._init:
            status["initContainerStatuses"] = [c.status() for c in self._init]
        return status

    def _init_failed(self) -> bool:
        return any(
            c.terminated is not None and c.terminated["exitCode"] != 0 and c.restart_at is None for c in self._init
        )

    def _condition(self, kind: str, ok: bool, reason: str) -> dict[str, Any]:
        value = "True" if ok else "False"
        previous = self._transitions.get(kind)
        if previous is None or previous[0] != value:
            self._transitions[kind] = (value, _now())
        condition = {"type": kind, "status": value, "lastTransitionTime": self._transitions[kind][1]}
        if not ok:
            condition["reason"] = reason
        return condition

    def _remove_volumes(self) -> None:
        """Delete the emptyDirs and the containers' venvs once the processes are gone and the Pod is
        going (the kubelet's rule); the logs stay."""
        with self._lock:
            if self._volumes_removed:
                return
            self._volumes_removed = True
        self._volumes.remove()
        shutil.rmtree(self.dir / "layers", ignore_errors=True)

    def _delete_pod(self) -> None:
        try:
            self._core.delete_namespaced_pod(
                self.name,
                self.namespace,
                body=client.V1DeleteOptions(grace_period_seconds=0, preconditions=client.V1Preconditions(uid=self.uid)),
            )
        except ApiException as exc:
            if exc.status not in (404, 409):  # gone already, or a new Pod has the name
                log.warning("pod %s/%s: delete failed: %s", self.namespace, self.name, exc)


def _reap(container: _Container, *, block: bool) -> bool:
    """Whether the container's process has exited; reaps it with `wait4` to keep its usage."""
    popen = container.popen
    if popen is None:
        return True
    if popen.returncode is not None:
        return True
    try:
        pid, status, rusage = os.wait4(popen.pid, 0 if block else os.WNOHANG)
    except ChildProcessError:  # reaped elsewhere: no usage to keep
        popen.returncode = 0
        return True
    if pid == 0:
        return False
    popen.returncode = os.waitstatus_to_exitcode(status)
    peak = None
    with contextlib.suppress(OSError, ValueError, IndexError):  # killed with its process: no report
        peak = int(container.rss_path.read_text().split()[-1])
    container.usage = container.usage.add(rusage, peak)
    return True


def _signal_group(popen: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, sig)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
