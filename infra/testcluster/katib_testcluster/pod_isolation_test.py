"""emptyDir bind mounts and a Pod's PID namespace, with real processes (needs root, like the node agent)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from katib_testcluster import pod_isolation


def _spec(*volumes: dict[str, object]) -> dict[str, object]:
    return {"volumes": list(volumes)}


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture()
def mountpoint() -> str:
    """A mountpoint that does not exist on this machine (the wrapper creates it, empty)."""
    return f"/var/tmp/pykatib-isolation-{uuid.uuid4().hex[:8]}/data"


def test_only_empty_dirs_are_mounted(tmp_path: Path) -> None:
    volumes = pod_isolation.PodVolumes(
        _spec({"name": "scratch", "emptyDir": {}}, {"name": "config", "configMap": {"name": "c"}}), tmp_path
    )
    container = {
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/a/b/", "readOnly": True},
            {"name": "config", "mountPath": "/etc/c"},
            {"name": "scratch", "mountPath": "/logs", "subPathExpr": "$(POD)/logs"},
        ]
    }

    volumes.create()
    mounts = volumes.mounts(container, {"POD": "p1"})

    assert mounts == [
        pod_isolation.Mount(tmp_path / "volumes" / "scratch", "/a/b", read_only=True),
        pod_isolation.Mount(tmp_path / "volumes" / "scratch" / "p1" / "logs", "/logs"),
    ]
    assert (tmp_path / "volumes" / "scratch" / "p1" / "logs").is_dir()
    volumes.remove()
    assert not (tmp_path / "volumes").exists()


@pytest.mark.parametrize(("key", "value"), [("subPath", "../up"), ("subPath", "/abs"), ("mountPath", "rel")])
def test_unsafe_mounts_are_refused(tmp_path: Path, key: str, value: str) -> None:
    volumes = pod_isolation.PodVolumes(_spec({"name": "v", "emptyDir": {}}), tmp_path)
    mount = {"name": "v", "mountPath": "/m", key: value}

    with pytest.raises(pod_isolation.VolumeError):
        volumes.mounts({"volumeMounts": [mount]}, {})


def test_without_mounts_or_pid_namespace_the_argv_is_unchanged() -> None:
    assert pod_isolation.wrap_argv(["python", "-c", "pass"], [], None) == ["python", "-c", "pass"]


def test_two_processes_share_a_volume_the_machine_does_not_see(tmp_path: Path, mountpoint: str) -> None:
    source = tmp_path / "volume"
    source.mkdir()
    mounts = [pod_isolation.Mount(source, mountpoint)]

    writer = _run(pod_isolation.wrap_argv(["sh", "-c", f"echo hello > {mountpoint}/f"], mounts, None))
    reader = _run(pod_isolation.wrap_argv(["cat", f"{mountpoint}/f"], mounts, None))

    assert (writer.returncode, writer.stderr) == (0, "")
    assert (reader.returncode, reader.stdout) == (0, "hello\n")
    assert (source / "f").read_text() == "hello\n"
    assert os.listdir(mountpoint) == []  # the bind mount stayed in the processes' namespaces


def test_a_read_only_mount_refuses_writes(tmp_path: Path, mountpoint: str) -> None:
    mounts = [pod_isolation.Mount(tmp_path, mountpoint, read_only=True)]

    result = _run(pod_isolation.wrap_argv(["sh", "-c", f"touch {mountpoint}/f"], mounts, None))

    assert result.returncode != 0
    assert "Read-only file system" in result.stderr
    assert not (tmp_path / "f").exists()


def test_processes_of_a_pid_namespace_see_only_each_other() -> None:
    namespace = pod_isolation.PidNamespace()
    try:
        sleeper = subprocess.Popen(pod_isolation.wrap_argv(["sleep", "60"], [], namespace.path))
        try:
            listing = _run(pod_isolation.wrap_argv(["ps", "-e", "-o", "pid=,ppid=,args="], [], namespace.path))
        finally:
            sleeper.kill()
            sleeper.wait()
    finally:
        namespace.stop()

    rows = [line.split(None, 2) for line in listing.stdout.splitlines()]
    by_command = {args: (int(pid), int(ppid)) for pid, ppid, args in rows}
    assert by_command["sleep infinity"] == (1, 0)  # the pause process
    assert by_command["sleep 60"][1] == 0  # a container's process: its parent is outside
    assert by_command["ps -e -o pid=,ppid=,args="][1] == 0
    assert len(rows) == 3


def test_stopping_the_pid_namespace_kills_its_processes() -> None:
    namespace = pod_isolation.PidNamespace()
    child = subprocess.Popen(
        pod_isolation.wrap_argv(["sh", "-c", "sleep 60 & wait"], [], namespace.path), start_new_session=True
    )

    namespace.stop()

    assert child.wait(30) != 0  # its processes got SIGKILL from the kernel with the namespace's PID 1
