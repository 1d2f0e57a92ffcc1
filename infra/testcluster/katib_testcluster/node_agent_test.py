"""Pods and Jobs really run through the node agent: the real scheduler binds, KCM's Job controller
reacts to the statuses the agent writes."""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from typing import Any, Protocol, Self, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from katib_testcluster import cluster, polling

#: A plain Python image: CPython 3.11 from pyenv, in a venv (katib_testcluster.images).
IMAGE = "python:3.11-slim"


class _Model(Protocol):
    @classmethod
    def from_dict(cls, obj: dict[str, Any] | None) -> Self | None: ...


M = TypeVar("M", bound=_Model)


def test_job_runs_python_and_completes(k8s_cluster: cluster.Cluster, k8s_namespace: str) -> None:
    script = "import os, sys; print('pod', os.environ['POD_NAME'], 'trial', os.environ['TRIAL'], sys.version_info[0])"
    job = _job(
        "ok",
        [
            {
                "name": "training-container",
                "image": IMAGE,
                "command": ["python", "-c"],
                "args": [script],
                "env": [
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {
                        "name": "TRIAL",
                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['katib.kubeflow.org/trial']"}},
                    },
                ],
            }
        ],
        labels={"katib.kubeflow.org/trial": "ok-trial"},
    )
    batch = client.BatchV1Api(k8s_cluster.api_client)

    batch.create_namespaced_job(k8s_namespace, _model(client.V1Job, job))

    _wait_job_condition(batch, k8s_namespace, "ok", "Complete")
    (pod,) = _pods(k8s_cluster, k8s_namespace, "job-name=ok")
    assert pod["spec"]["nodeName"] == k8s_cluster.node_agent.node_name
    assert pod["status"]["phase"] == "Succeeded"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    name = pod["metadata"]["name"]
    assert k8s_cluster.pod_log(k8s_namespace, name) == f"pod {name} trial ok-trial 3\n"


def test_job_with_failing_pod_fails(k8s_cluster: cluster.Cluster, k8s_namespace: str) -> None:
    job = _job("bad", [{"name": "main", "image": IMAGE, "command": ["python", "-c", "import sys; sys.exit(3)"]}])
    batch = client.BatchV1Api(k8s_cluster.api_client)

    batch.create_namespaced_job(k8s_namespace, _model(client.V1Job, job))

    _wait_job_condition(batch, k8s_namespace, "bad", "Failed")
    (pod,) = _pods(k8s_cluster, k8s_namespace, "job-name=bad")
    assert pod["status"]["phase"] == "Failed"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")


def test_env_from_secrets_and_config_maps_and_working_dir(k8s_cluster: cluster.Cluster, k8s_namespace: str) -> None:
    core = client.CoreV1Api(k8s_cluster.api_client)
    core.create_namespaced_secret(
        k8s_namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"token": "t0p"})
    )
    core.create_namespaced_config_map(
        k8s_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"), data={"LR": "0.1", "DB": "x:1"})
    )
    container = {
        "name": "main",
        "image": IMAGE,
        "command": ["sh", "-c", 'echo "$TOKEN $CFG_LR $CFG_DB $(pwd) $GREETING $HOME"'],
        "workingDir": "/pykatib-test-not-here/work",
        "envFrom": [{"configMapRef": {"name": "c"}, "prefix": "CFG_"}],
        "env": [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
            {"name": "MISSING", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}}},
            {"name": "GREETING", "value": "lr=$(CFG_LR)"},
        ],
    }

    pod = _run_pod(k8s_cluster, k8s_namespace, "env", [container])

    assert pod["status"]["phase"] == "Succeeded"
    token, lr, db, cwd, greeting, home = k8s_cluster.pod_log(k8s_namespace, "env").split()
    assert (token, lr, db, greeting) == ("t0p", "0.1", "x:1", "lr=0.1")
    assert cwd == f"{home}/rootfs/pykatib-test-not-here/work"


def test_containers_of_a_pod_run_concurrently(k8s_cluster: cluster.Cluster, k8s_namespace: str) -> None:
    # Each container waits for the other's file in the shared pod dir: only concurrency finishes.
    def handshake(mine: str, theirs: str) -> dict[str, Any]:
        code = textwrap.dedent(f"""
            import pathlib, time
            pathlib.Path("{mine}").touch()
            deadline = time.time() + 30
            while not pathlib.Path("{theirs}").exists():
                assert time.time() < deadline, "no concurrency"
                time.sleep(0.05)
            print("met")
        """)
        return {"name": mine, "image": IMAGE, "command": ["python", "-c", code]}

    pod = _run_pod(k8s_cluster, k8s_namespace, "pair", [handshake("a", "b"), handshake("b", "a")])

    assert pod["status"]["phase"] == "Succeeded"
    assert k8s_cluster.pod_log(k8s_namespace, "pair", "a") == "met\n"
    assert k8s_cluster.pod_log(k8s_namespace, "pair", "b") == "met\n"
    assert _exit_codes(pod) == {"a": 0, "b": 0}


def test_a_failing_sidecar_fails_the_pod(k8s_cluster: cluster.Cluster, k8s_namespace: str) -> None:
    containers = [
        {"name": "main", "image": IMAGE, "command": ["true"]},
        {"name": "sidecar", "image": IMAGE, "command": ["sh", "-c", "exit 7"]},
    ]

    pod = _run_pod(k8s_cluster, k8s_namespace, "sidecar", containers)

    assert pod["status"]["phase"] == "Failed"
    assert _exit_codes(pod) == {"main": 0, "sidecar": 7}


def test_init_containers_run_first(k8s_cluster: cluster.Cluster, k8s_namespace: str) -> None:
    pod = _pod("init", [{"name": "main", "image": IMAGE, "command": ["cat", "prepared"]}])
    prepare = {"name": "prepare", "image": IMAGE, "command": ["sh", "-c", "echo ok > prepared"]}
    pod["spec"]["initContainers"] = [prepare]
    core = client.CoreV1Api(k8s_cluster.api_client)

    core.create_namespaced_pod(k8s_namespace, _model(client.V1Pod, pod))

    finished = _wait_finished(core, k8s_namespace, "init")
    assert finished["status"]["phase"] == "Succeeded"
    assert finished["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert k8s_cluster.pod_log(k8s_namespace, "init") == "ok\n"


def test_on_failure_restarts_the_container(k8s_cluster: cluster.Cluster, k8s_namespace: str) -> None:
    # Fails on the first run only: the marker file in the pod dir survives the restart.
    script = "test -e tried && echo second || { touch tried; echo first; exit 1; }"
    pod = _pod("flaky", [{"name": "main", "image": IMAGE, "command": ["sh", "-c", script]}])
    pod["spec"]["restartPolicy"] = "OnFailure"
    core = client.CoreV1Api(k8s_cluster.api_client)

    core.create_namespaced_pod(k8s_namespace, _model(client.V1Pod, pod))

    finished = _wait_finished(core, k8s_namespace, "flaky")
    assert finished["status"]["phase"] == "Succeeded"
    (status,) = finished["status"]["containerStatuses"]
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert k8s_cluster.pod_log(k8s_namespace, "flaky") == "first\nsecond\n"


def test_pod_deletion_kills_the_process_group(k8s_cluster: cluster.Cluster, k8s_namespace: str) -> None:
    # The process ignores SIGTERM and has a child: the agent must SIGKILL the whole group.
    code = textwrap.dedent("""
        import os, signal, subprocess, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen(["sleep", "600"])
        print(os.getpid(), child.pid, flush=True)
        time.sleep(600)
    """)
    core = client.CoreV1Api(k8s_cluster.api_client)
    sleeper = _pod("sleeper", [{"name": "main", "image": IMAGE, "command": ["python", "-c", code]}])
    core.create_namespaced_pod(k8s_namespace, _model(client.V1Pod, sleeper))
    polling.wait_until(
        lambda: re.fullmatch(r"\d+ \d+\n", k8s_cluster.pod_log(k8s_namespace, "sleeper")),
        timeout=30,
        what="the sleeper's pids",
    )
    pids = [int(pid) for pid in k8s_cluster.pod_log(k8s_namespace, "sleeper").split()]
    assert all(_alive(pid) for pid in pids)
    assert _read_pod(core, k8s_namespace, "sleeper")["status"]["phase"] == "Running"

    core.delete_namespaced_pod("sleeper", k8s_namespace, grace_period_seconds=1)

    polling.wait_until(lambda: _gone(core, k8s_namespace, "sleeper"), timeout=30, what="pod sleeper deleted")
    assert not any(_alive(pid) for pid in pids)


def test_empty_dirs_are_shared_by_a_pods_containers_and_removed_with_it(
    k8s_cluster: cluster.Cluster, k8s_namespace: str
) -> None:
    # The mountpoint is missing on this machine; the pull-mode sidecar's layout, in miniature.
    mountpoint = f"/var/tmp/pykatib-agent-{os.urandom(4).hex()}/katib"
    writer = {
        "name": "writer",
        "image": IMAGE,
        "command": ["sh", "-c", f"echo written > {mountpoint}/metrics.log; exec sleep 600"],
        "volumeMounts": [{"name": "metrics", "mountPath": mountpoint}],
    }
    reader_code = textwrap.dedent(f"""
        import os, pathlib, time
        log = pathlib.Path("{mountpoint}/metrics.log")
        while not log.exists():
            time.sleep(0.05)
        commands = sorted(pathlib.Path(f"/proc/{{p}}/cmdline").read_bytes().replace(b"\\0", b" ").decode().strip()
                          for p in os.listdir("/proc") if p.isdigit() and p != str(os.getpid()))
        print(log.read_text().strip(), commands, flush=True)
        try:
            (log.parent / "x").touch()
        except OSError as exc:
            print(exc.strerror, flush=True)
    """)
    reader = {
        "name": "reader",
        "image": IMAGE,
        "command": ["python", "-c", reader_code],
        "volumeMounts": [{"name": "metrics", "mountPath": mountpoint, "readOnly": True}],
    }
    pod = _pod("shared", [writer, reader])
    pod["spec"]["volumes"] = [{"name": "metrics", "emptyDir": {}}, {"name": "other", "configMap": {"name": "c"}}]
    pod["spec"]["shareProcessNamespace"] = True
    core = client.CoreV1Api(k8s_cluster.api_client)

    core.create_namespaced_pod(k8s_namespace, _model(client.V1Pod, pod))

    polling.wait_until(
        lambda: "Read-only" in k8s_cluster.pod_log(k8s_namespace, "shared", "reader"),
        timeout=60,
        what="the reader's output",
    )
    # It read the writer's file, saw the Pod's processes only (pause, writer), and could not write.
    assert k8s_cluster.pod_log(k8s_namespace, "shared", "reader") == (
        "written ['sleep 600', 'sleep infinity']\nRead-only file system\n"
    )
    volume = k8s_cluster.node_agent.log_path(k8s_namespace, "shared").parent.parent / "volumes" / "metrics"
    assert (volume / "metrics.log").read_text() == "written\n"
    assert os.listdir(mountpoint) == []  # bind mounts stay inside the containers
    core.delete_namespaced_pod("shared", k8s_namespace, grace_period_seconds=1)
    polling.wait_until(lambda: _gone(core, k8s_namespace, "shared"), timeout=30, what="pod shared deleted")
    assert not volume.exists()


def test_each_containers_cpu_time_and_peak_rss_are_kept(k8s_cluster: cluster.Cluster, k8s_namespace: str) -> None:
    # 64 MiB written (not calloc'ed zeros, which would not be resident), then 0.3 s of CPU.
    code = "import time; block = b'x' * (64 << 20); end = time.process_time() + 0.3\n"
    code += "while time.process_time() < end: pass"
    containers = [
        {"name": "busy", "image": IMAGE, "command": ["python", "-c", code]},
        {"name": "idle", "image": IMAGE, "command": ["true"]},
    ]

    _run_pod(k8s_cluster, k8s_namespace, "usage", containers)

    usage = k8s_cluster.node_agent.usage(k8s_namespace, "usage")
    assert usage["busy"].runs == usage["idle"].runs == 1
    assert usage["busy"].cpu_seconds >= 0.3
    assert usage["busy"].max_rss_kib is not None
    assert usage["busy"].max_rss_kib >= 64 << 10
    assert usage["idle"].max_rss_kib is not None
    assert usage["idle"].max_rss_kib < 16 << 10  # not the agent's own RSS, which a forked child starts with


#: Prints what a container runs on: Python version, PYTHONPATH, where `python3`/`pip` and pip's
#: installs go, grpcio's version, and whether our code is importable.
_WHICH = textwrap.dedent("""
    import importlib.util, json, os, shutil, sys, sysconfig
    try:
        import grpc
        grpc_version = grpc.__version__
    except ImportError:
        grpc_version = None
    print(json.dumps({
        "python": "%d.%d" % sys.version_info[:2],
        "pythonpath": os.environ.get("PYTHONPATH"),
        "python3": shutil.which("python3"),
        "pip": shutil.which("pip"),
        "installs_to": sysconfig.get_paths()["purelib"],
        "grpc": grpc_version,
        "ours": importlib.util.find_spec("katib_testcluster") is not None,
    }))
""")


def test_each_image_runs_the_python_it_carries(k8s_cluster: cluster.Cluster, k8s_namespace: str) -> None:
    images = {
        "tf": "tensorflow/tensorflow:2.13.0",
        "torch": "docker.io/pytorch/pytorch:2.2.1-cuda12.1-cudnn8-runtime",
        "plain": "docker.io/library/python:3.9-slim",
        "ours": "ghcr.io/pykatib/pykatib-trial:v0.1.0",
    }
    containers = [{"name": n, "image": i, "command": ["python3", "-c", _WHICH]} for n, i in images.items()]

    # Generous: the first run on a machine builds the images' venvs (pip downloads grpcio).
    pod = _run_pod(k8s_cluster, k8s_namespace, "pythons", containers, timeout=900)

    assert _exit_codes(pod) == dict.fromkeys(images, 0), pod["status"]
    ran = {n: json.loads(k8s_cluster.pod_log(k8s_namespace, "pythons", n)) for n in images}
    assert {n: r["python"] for n, r in ran.items()} == {
        "tf": "3.8",
        "torch": "3.10",
        "plain": "3.9",
        "ours": "%d.%d" % sys.version_info[:2],
    }
    assert ran["tf"]["grpc"].startswith("1.56.")
    assert ran["torch"]["grpc"] is None
    layers = k8s_cluster.node_agent.log_path(k8s_namespace, "pythons").parent.parent / "layers"
    for name in ("tf", "torch", "plain"):  # a venv of their own, first on PATH; none of our code
        assert ran[name]["pythonpath"] is None
        assert not ran[name]["ours"]
        for key in ("python3", "pip", "installs_to"):
            assert ran[name][key].startswith(f"{layers / name}/"), (name, key, ran[name][key])
    assert ran["ours"]["ours"]
    assert ran["ours"]["pythonpath"]


def test_an_image_without_an_interpreter_cannot_run(k8s_cluster: cluster.Cluster, k8s_namespace: str) -> None:
    pod = _run_pod(
        k8s_cluster, k8s_namespace, "unknown", [{"name": "main", "image": "busybox:1.36", "command": ["true"]}]
    )

    assert pod["status"]["phase"] == "Failed"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "ContainerCannotRun"
    assert "the test node agent has no interpreter for image 'busybox:1.36'; known: ghcr.io/pykatib/*" in (
        terminated["message"]
    )


def test_what_a_container_installs_stays_in_that_container(k8s_cluster: cluster.Cluster, k8s_namespace: str) -> None:
    # The init container writes a module where pip would install it; the next container of the
    # same image starts from the image again, as from a fresh writable layer.
    install = "import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()['purelib'], 'mark.py').touch()"
    check = "import importlib.util; print(importlib.util.find_spec('mark'))"
    pod = _pod("layers", [{"name": "main", "image": IMAGE, "command": ["python", "-c", check]}])
    pod["spec"]["initContainers"] = [{"name": "install", "image": IMAGE, "command": ["python", "-c", install]}]
    core = client.CoreV1Api(k8s_cluster.api_client)

    core.create_namespaced_pod(k8s_namespace, _model(client.V1Pod, pod))

    finished = _wait_finished(core, k8s_namespace, "layers")
    assert finished["status"]["phase"] == "Succeeded"
    assert k8s_cluster.pod_log(k8s_namespace, "layers") == "None\n"


def test_container_logs_through_the_apiserver(k8s_cluster: cluster.Cluster, k8s_namespace: str) -> None:
    """``kubectl logs`` (pods/log): the apiserver calls the agent's kubelet log endpoint over TLS."""
    core = client.CoreV1Api(k8s_cluster.api_client)
    counting = "import time\nfor i in range(5):\n    print('line', i, flush=True)\n    time.sleep(0.3)\n"
    other = {"name": "other", "image": IMAGE, "command": ["python", "-c", "print('not me')"]}
    main = {"name": "main", "image": IMAGE, "command": ["python", "-c", counting]}
    core.create_namespaced_pod(k8s_namespace, _model(client.V1Pod, _pod("talker", [main, other])))
    polling.wait_until(
        lambda: _read_pod(core, k8s_namespace, "talker").get("status", {}).get("phase") != "Pending",
        timeout=60,
        what="pod talker started",
    )

    # follow: every line, as it is written, and the stream ends when the container does
    stream = core.read_namespaced_pod_log(
        "talker", k8s_namespace, container="main", follow=True, _preload_content=False
    )
    followed = b"".join(stream.stream()).decode()  # type: ignore[attr-defined]  # _preload_content=False
    assert followed.splitlines() == [f"line {i}" for i in range(5)]

    _wait_finished(core, k8s_namespace, "talker")
    assert core.read_namespaced_pod_log("talker", k8s_namespace, container="main") == followed
    assert core.read_namespaced_pod_log("talker", k8s_namespace, container="main", tail_lines=2) == "line 3\nline 4\n"
    assert core.read_namespaced_pod_log("talker", k8s_namespace, container="other") == "not me\n"
    try:  # two containers: the apiserver itself asks which one
        core.read_namespaced_pod_log("talker", k8s_namespace)
    except ApiException as exc:
        assert exc.status == 400
        assert "container name must be specified" in str(exc.body)
    else:
        raise AssertionError("a log without a container name was served for a two-container Pod")


def _job(name: str, containers: list[dict[str, Any]], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels or {}},
                "spec": {"restartPolicy": "Never", "containers": containers},
            },
        },
    }


def _pod(name: str, containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": containers},
    }


def _model(model: type[M], body: dict[str, Any]) -> M:
    """A client model from a manifest dict (camelCase keys)."""
    built = model.from_dict(body)
    assert built is not None
    return built


def _run_pod(
    k8s_cluster: cluster.Cluster, namespace: str, name: str, containers: list[dict[str, Any]], *, timeout: float = 60
) -> dict[str, Any]:
    """Create a Pod, wait until it has finished, return it as a dict."""
    core = client.CoreV1Api(k8s_cluster.api_client)
    core.create_namespaced_pod(namespace, _model(client.V1Pod, _pod(name, containers)))
    return _wait_finished(core, namespace, name, timeout=timeout)


def _wait_finished(core: client.CoreV1Api, namespace: str, name: str, *, timeout: float = 60) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        pod = _read_pod(core, namespace, name)
        return pod if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") else None

    return polling.wait_until(finished, timeout=timeout, what=f"pod {name} finished")


def _read_pod(core: client.CoreV1Api, namespace: str, name: str) -> dict[str, Any]:
    pod: dict[str, Any] = core.api_client.sanitize_for_serialization(core.read_namespaced_pod(name, namespace))
    return pod


def _exit_codes(pod: dict[str, Any]) -> dict[str, int]:
    return {s["name"]: s["state"]["terminated"]["exitCode"] for s in pod["status"]["containerStatuses"]}


def _wait_job_condition(batch: client.BatchV1Api, namespace: str, name: str, kind: str) -> None:
    def has_condition() -> bool:
        status = batch.read_namespaced_job_status(name, namespace).status
        conditions = (status.conditions if status else None) or []
        return any(c.type == kind and c.status == "True" for c in conditions)

    polling.wait_until(has_condition, timeout=60, what=f"job {name} {kind}")


def _pods(k8s_cluster: cluster.Cluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    core = client.CoreV1Api(k8s_cluster.api_client)
    pods: dict[str, Any] = core.api_client.sanitize_for_serialization(
        core.list_namespaced_pod(namespace, label_selector=selector)
    )
    return list(pods["items"])


def _gone(core: client.CoreV1Api, namespace: str, name: str) -> bool:
    try:
        core.read_namespaced_pod(name, namespace)
    except ApiException as exc:
        return bool(exc.status == 404)
    return False


def _alive(pid: int) -> bool:
    """True if `pid` runs (a zombie waiting for init to reap it counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        return os.path.exists(f"/proc/{pid}")
