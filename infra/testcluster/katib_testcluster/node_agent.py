"""A test-only node agent: the kubelet's part, for the loopback control plane.

It registers a Node (Ready, with allocatable cpu/memory/pods), removes the `not-ready` taint
admission puts on new Nodes so the real scheduler binds Pods to it, keeps the Node's status
fresh, and runs every Pod bound to it as local processes (`pod_runner` says what is honoured),
each container with the Python its image carries (`images`).
Runs in threads (`with NodeAgent(api_client) as agent:`) or as a process:

    python -m katib_testcluster.node_agent --kubeconfig K --node-name N
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from katib_testcluster import images, kubelet_logs, pod_runner, polling
from katib_testcluster.pki import KeyPair
from katib_testcluster.pod_runner import PodRunner

log = logging.getLogger(__name__)

DEFAULT_NODE_NAME = "pykatib-node"
DEFAULT_CAPACITY: Mapping[str, str] = {
    "cpu": "16",
    "memory": "64Gi",
    "pods": "250",
    "ephemeral-storage": "100Gi",
}
NODE_IP = "127.0.0.1"
_NOT_READY_TAINTS = frozenset({"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})
_MERGE_PATCH = "application/merge-patch+json"
_WATCH_SECONDS = 30
_TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


class NodeAgent:
    """Plays the kubelet of one Node: registers it and runs the Pods the scheduler binds to it.

    Args:
        api_client: a client with rights on nodes, pods, pods/status, secrets and configmaps.
        node_name: the Node to register (reused if it exists).
        root_dir: where pod dirs and logs go; default a temp dir removed by `stop()`.
        capacity: the Node's capacity and allocatable (add e.g. `nvidia.com/gpu` if pods ask).
        heartbeat_seconds: how often the Node's status is refreshed.
        kubelet_cert: a serving certificate for 127.0.0.1 signed by the apiserver's
            ``--kubelet-certificate-authority``: with it the agent serves container logs
            (``kubectl logs``, ``read_namespaced_pod_log``) as the kubelet does (``kubelet_logs``).
    """

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        node_name: str = DEFAULT_NODE_NAME,
        root_dir: Path | None = None,
        capacity: Mapping[str, str] = DEFAULT_CAPACITY,
        heartbeat_seconds: float = 10.0,
        kubelet_cert: KeyPair | None = None,
    ) -> None:
        self.node_name = node_name
        self._logs = (
            None
            if kubelet_cert is None
            else kubelet_logs.KubeletLogServer(self._log_of, cert=kubelet_cert.cert, key=kubelet_cert.key)
        )
        self._core = client.CoreV1Api(api_client)
        self._own_root = root_dir is None
        self.root_dir = Path(tempfile.mkdtemp(prefix="pykatib-node-")) if root_dir is None else root_dir
        self._capacity = dict(capacity)
        self._heartbeat_seconds = heartbeat_seconds
        self._runners: dict[str, PodRunner] = {}  # by Pod uid
        self._by_name: dict[tuple[str, str], PodRunner] = {}  # newest runner per namespace/name
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watch: watch.Watch | None = None
        self._threads: list[threading.Thread] = []
        self._environments = self._make_environments()
        self._started_at = _now()

    def __enter__(self) -> NodeAgent:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Register the Node, make it schedulable and start watching Pods bound to it."""
        self.root_dir.mkdir(parents=True, exist_ok=True)
        self._write_shims()
        if self._logs is not None:
            self._logs.__enter__()
        self._register()
        for target, name in ((self._watch_pods, "pods"), (self._heartbeat, "heartbeat")):
            thread = threading.Thread(target=target, name=f"node-agent-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, *, grace_seconds: float = 2.0) -> None:
        """Kill every Pod process (SIGTERM, SIGKILL after `grace_seconds`) and stop watching."""
        self._stopping.set()
        if self._watch is not None:
            self._watch.stop()  # type: ignore[no-untyped-call]
        with self._lock:
            runners = list(self._runners.values())
        for runner in runners:
            runner.terminate(grace_seconds, delete_pod=False)
        for runner in runners:
            runner.join(grace_seconds + 10)
        for thread in self._threads:
            thread.join(5)
        if self._logs is not None:
            self._logs.__exit__(None, None, None)
        if self._own_root:
            shutil.rmtree(self.root_dir, ignore_errors=True)

    def log_path(self, namespace: str, pod: str, container: str | None = None) -> Path:
        """The log file of a container (default: the first) of a Pod this agent ran."""
        with self._lock:
            runner = self._by_name.get((namespace, pod))
        if runner is None:
            raise KeyError(f"pod {namespace}/{pod} never ran on node {self.node_name}")
        return runner.log_path(container)

    def usage(self, namespace: str, pod: str) -> dict[str, pod_runner.Usage]:
        """CPU time and peak RSS of each container of a Pod this agent ran (exited runs only)."""
        with self._lock:
            runner = self._by_name.get((namespace, pod))
        if runner is None:
            raise KeyError(f"pod {namespace}/{pod} never ran on node {self.node_name}")
        return runner.usage()

    def _log_of(self, namespace: str, pod: str, container: str) -> tuple[Path, Callable[[], bool]]:
        with self._lock:
            runner = self._by_name.get((namespace, pod))
        if runner is None:
            raise KeyError(f"pod {namespace}/{pod} never ran on node {self.node_name}")
        return runner.log_path(container), lambda: runner.may_write(container)

    def read_log(self, namespace: str, pod: str, container: str | None = None) -> str:
        """stdout and stderr of a container of a Pod this agent ran (kept after deletion)."""
        path = self.log_path(namespace, pod, container)
        return path.read_text(errors="replace") if path.exists() else ""

    def _register(self) -> None:
        labels = {
            "kubernetes.io/hostname": self.node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": _go_arch(),
        }
        body = client.V1Node(metadata=client.V1ObjectMeta(name=self.node_name, labels=labels))
        try:
            self._core.create_node(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
        self._patch_node_status()
        polling.wait_until(self._untaint, timeout=30, what=f"node {self.node_name} untainted")
        log.info("node %s registered and schedulable", self.node_name)

    def _untaint(self) -> bool:
        """Remove the not-ready taint (the kubelet's job once its node is Ready)."""
        node = self._core.read_node(self.node_name)
        taints = (node.spec.taints or []) if node.spec else []
        keep = [t for t in taints if t.key not in _NOT_READY_TAINTS]
        if len(keep) == len(taints):
            return True
        body = {"spec": {"taints": [self._core.api_client.sanitize_for_serialization(t) for t in keep]}}
        self._core.patch_node(self.node_name, body, _content_type=_MERGE_PATCH)
        return False

    def _patch_node_status(self) -> None:
        now = _now()

        def condition(kind: str, value: str, reason: str, message: str) -> dict[str, str]:
            return {
                "type": kind,
                "status": value,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": self._started_at,
            }

        status = {
            "capacity": self._capacity,
            "allocatable": self._capacity,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "no pressure"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "no pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "no pressure"),
                condition("Ready", "True", "KubeletReady", "pykatib test node agent is ready"),
            ],
            **({"daemonEndpoints": {"kubeletEndpoint": {"Port": self._logs.port}}} if self._logs else {}),
            "addresses": [
                {"type": "InternalIP", "address": NODE_IP},
                {"type": "Hostname", "address": self.node_name},
            ],
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": platform.release(),
                "osImage": "pykatib test node agent",
                "containerRuntimeVersion": "process://0.1",
                "kubeletVersion": "v1.20.2",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": _go_arch(),
            },
        }
        self._core.patch_node_status(self.node_name, {"status": status}, _content_type=_MERGE_PATCH)

    def _heartbeat(self) -> None:
        while not self._stopping.wait(self._heartbeat_seconds):
            try:
                self._patch_node_status()
            except Exception as exc:  # keep beating; the next one may work
                if not self._stopping.is_set():
                    log.warning("node %s: heartbeat failed: %s", self.node_name, exc)

    def _watch_pods(self) -> None:
        selector = f"spec.nodeName={self.node_name}"
        resource_version: str | None = None
        while not self._stopping.is_set():
            try:
                if resource_version is None:
                    resource_version = self._relist(selector)
                self._watch = watch.Watch()  # type: ignore[no-untyped-call]
                for event in self._watch.stream(  # type: ignore[no-untyped-call]
                    self._core.list_pod_for_all_namespaces,
                    field_selector=selector,
                    resource_version=resource_version,
                    timeout_seconds=_WATCH_SECONDS,
                    allow_watch_bookmarks=True,
                    deserialize=False,
                ):
                    pod = event["object"]
                    resource_version = pod["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self._handle(event["type"], pod)
            except ApiException as exc:
                if exc.status == 410:  # our resourceVersion is too old: list again
                    resource_version = None
                elif not self._stopping.is_set():
                    log.warning("node %s: pod watch failed: %s", self.node_name, exc)
                    self._stopping.wait(1)
            except Exception as exc:  # the apiserver may be restarting
                if not self._stopping.is_set():
                    log.warning("node %s: pod watch broke: %r", self.node_name, exc)
                    self._stopping.wait(1)

    def _relist(self, selector: str) -> str:
        pods = self._core.list_pod_for_all_namespaces(field_selector=selector)
        seen = set()
        for item in pods.items:
            pod = self._core.api_client.sanitize_for_serialization(item)  # camelCase, like events
            seen.add(pod["metadata"]["uid"])
            self._handle("ADDED", pod)
        with self._lock:
            vanished = [r for uid, r in self._runners.items() if uid not in seen and r.alive]
        for runner in vanished:
            runner.terminate(0, delete_pod=False)
        return str(pods.metadata.resource_version if pods.metadata else "")

    def _handle(self, kind: str, pod: dict[str, Any]) -> None:
        metadata = pod["metadata"]
        with self._lock:
            runner = self._runners.get(metadata["uid"])
        if kind == "DELETED":
            if runner is not None:
                runner.terminate(0, delete_pod=False)
            return
        if metadata.get("deletionTimestamp"):
            grace = float(metadata.get("deletionGracePeriodSeconds") or 0)
            if runner is not None:
                runner.terminate(grace)  # deletes the Pod once its processes are gone
            else:
                _finalize_deletion(self._core, pod)
            return
        if runner is None and pod.get("status", {}).get("phase") not in _TERMINAL_PHASES:
            self._start_runner(pod)

    def _start_runner(self, pod: dict[str, Any]) -> None:
        metadata = pod["metadata"]
        pod_dir = self.root_dir / "pods" / metadata["namespace"] / f"{metadata['name']}-{metadata['uid'][:8]}"
        runner = PodRunner(pod, core=self._core, pod_dir=pod_dir, environments=self._environments, pod_ip=NODE_IP)
        with self._lock:
            self._runners[runner.uid] = runner
            self._by_name[runner.namespace, runner.name] = runner
        runner.start()

    def _make_environments(self) -> images.Environments:
        """Containers' environments: our images get this interpreter and PYTHONPATH (`python` and
        `python3` are shims running it), others a venv of the Python they carry (`images`)."""
        plain = {name: os.environ[name] for name in ("LANG", "LC_ALL", "TZ") if name in os.environ}
        plain["PATH"] = os.environ.get("PATH", os.defpath)
        ours = {
            **plain,
            "PATH": os.pathsep.join([str(self.root_dir / "bin"), plain["PATH"]]),
            # Absolute: pods run in their own directories, and Pants' sandboxes put relative entries here.
            "PYTHONPATH": os.pathsep.join(os.path.abspath(p) for p in sys.path if p),
        }
        return images.Environments(
            ours=ours, plain=plain, cache=images.cache_dir(os.environ), pyenv=images.pyenv_root(os.environ)
        )

    def _write_shims(self) -> None:
        shims = self.root_dir / "bin"
        shims.mkdir(parents=True, exist_ok=True)
        for name in ("python", "python3"):
            shim = shims / name
            shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
            shim.chmod(0o755)


def _finalize_deletion(core: client.CoreV1Api, pod: Mapping[str, Any]) -> None:
    """Delete (grace 0) a Pod whose processes are already gone, as the kubelet does."""
    metadata = pod["metadata"]
    try:
        core.delete_namespaced_pod(
            metadata["name"],
            metadata["namespace"],
            body=client.V1DeleteOptions(
                grace_period_seconds=0, preconditions=client.V1Preconditions(uid=metadata["uid"])
            ),
        )
    except ApiException as exc:
        if exc.status not in (404, 409):
            raise


def _go_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the agent until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m katib_testcluster.node_agent", description=__doc__)
    parser.add_argument("--kubeconfig", required=True, help="kubeconfig of the control plane")
    parser.add_argument("--node-name", default=DEFAULT_NODE_NAME)
    parser.add_argument("--root-dir", type=Path, help="pod dirs and logs (default: a temp dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    api_client = config.new_client_from_config(config_file=args.kubeconfig)  # type: ignore[no-untyped-call]
    with NodeAgent(api_client, node_name=args.node_name, root_dir=args.root_dir) as agent:
        log.info("node agent %s running; pod dirs under %s", agent.node_name, agent.root_dir)
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
