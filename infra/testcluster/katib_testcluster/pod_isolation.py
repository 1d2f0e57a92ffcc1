"""emptyDir volumes and a shared PID namespace for Pods run as local processes (root only).

- `PodVolumes`: one private directory per `emptyDir` volume under `<pod dir>/volumes/<name>`,
  removed with the Pod; `mounts()` resolves a container's `volumeMounts` (mountPath, readOnly,
  subPath, subPathExpr) to bind mounts. Other volume kinds are ignored: their mounts are skipped.
- `PidNamespace`: for `shareProcessNamespace: true`, a pause process (`sleep infinity` as PID 1
  of a new PID namespace) that every container of the Pod joins, so the containers see each
  other's processes in `/proc` and nothing else, as a Pod's sidecar does.
- `wrap_argv()`: a container's argv run in a mount namespace of its own (`unshare -m`, private
  propagation) with the bind mounts (mountpoints missing on the host are created there, empty),
  inside the Pod's PID namespace (`nsenter`, with `/proc` remounted) when it has one. Without
  mounts and a PID namespace the argv is unchanged.
Used by `pod_runner.PodRunner`.
"""

from __future__ import annotations

import posixpath
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from katib_testcluster import container_env

_PAUSE_SECONDS = 5.0  # how long the pause process may take to become PID 1 of its namespace


class VolumeError(Exception):
    """A volumeMount the node agent cannot honour (the kubelet's CreateContainerConfigError)."""


@dataclass(frozen=True)
class Mount:
    """A bind mount of `source` (a host directory) at `target` inside one container."""

    source: Path
    target: str
    read_only: bool = False


class PodVolumes:
    """The emptyDir directories of one Pod."""

    def __init__(self, pod_spec: Mapping[str, Any], pod_dir: Path) -> None:
        self.root = pod_dir / "volumes"
        volumes = pod_spec.get("volumes") or ()
        self.dirs: dict[str, Path] = {v["name"]: self.root / v["name"] for v in volumes if "emptyDir" in v}

    def create(self) -> None:
        for path in self.dirs.values():
            path.mkdir(parents=True, exist_ok=True)

    def remove(self) -> None:
        """Delete every emptyDir's content (the Pod is gone)."""
        shutil.rmtree(self.root, ignore_errors=True)

    def mounts(self, container: Mapping[str, Any], variables: Mapping[str, str]) -> list[Mount]:
        """The bind mounts of `container`'s emptyDir volumeMounts (other kinds are skipped).

        Raises:
            VolumeError: a mount names no volume of the Pod, or its path is not absolute, or its
                subPath leaves the volume.
        """
        found = []
        for mount in container.get("volumeMounts") or ():
            name, target = mount.get("name"), str(mount.get("mountPath") or "")
            if name not in self.dirs:
                continue  # not an emptyDir (or no such volume: the API server rejects those)
            if not posixpath.isabs(target):
                raise VolumeError(f"volumeMount {name!r}: mountPath {target!r} is not absolute")
            sub = mount.get("subPath") or container_env.expand(mount.get("subPathExpr") or "", variables)
            source = self.dirs[name]
            if sub:
                if posixpath.isabs(sub) or ".." in sub.split("/"):
                    raise VolumeError(f"volumeMount {name!r}: subPath {sub!r} must be relative, without '..'")
                source = source / sub
                source.mkdir(parents=True, exist_ok=True)  # the kubelet creates a missing subPath
            found.append(Mount(source, posixpath.normpath(target), bool(mount.get("readOnly"))))
        return found


class PidNamespace:
    """A pause process as PID 1 of a new PID namespace; `stop()` ends every process in it."""

    def __init__(self) -> None:
        # --kill-child: when unshare dies, its child (PID 1) does, and the kernel kills the rest.
        self._popen = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child", "sleep", "infinity"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.path = self._wait_for_init()

    def _wait_for_init(self) -> Path:
        """The namespace's path once the pause process runs in it (joining earlier would make us PID 1).

        `unshare` is our unreaped child, so its pid (and this path) cannot be reused meanwhile.
        """
        pid = self._popen.pid
        children = Path(f"/proc/{pid}/task/{pid}/children")
        deadline = time.monotonic() + _PAUSE_SECONDS
        while time.monotonic() < deadline:
            if self._popen.poll() is not None:
                break
            if children.exists() and children.read_text().split():
                return Path(f"/proc/{pid}/ns/pid_for_children")
            time.sleep(0.005)
        self.stop()
        raise OSError(f"no PID namespace: `unshare --pid --fork` exited with {self._popen.returncode}")

    def stop(self) -> None:
        if self._popen.poll() is None:
            self._popen.kill()
        self._popen.wait()


def wrap_argv(argv: Sequence[str], mounts: Sequence[Mount], pid_namespace: Path | None) -> list[str]:
    """`argv` run with `mounts` in a mount namespace of its own, in `pid_namespace` if given.

    With a PID namespace, `nsenter` stays the process the agent started (the container's
    processes are its children, with parent pid 0 inside the namespace, as in a Pod).
    """
    if not mounts and pid_namespace is None:
        return list(argv)
    steps = []
    if pid_namespace is not None:
        steps.append("mount -t proc proc /proc")
    for mount in mounts:
        target = shlex.quote(mount.target)
        steps.append(f"mkdir -p {target} && mount --bind {shlex.quote(str(mount.source))} {target}")
        if mount.read_only:
            steps.append(f"mount -o remount,bind,ro {target}")
    script = "set -e; " + "; ".join(steps) + '; exec "$@"'
    wrapped = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv]
    if pid_namespace is not None:
        wrapped = ["nsenter", f"--pid={pid_namespace}", "--", *wrapped]
    return wrapped
