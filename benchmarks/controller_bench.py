"""Controllers benchmark: N trials from Experiment creation to ``Succeeded`` on the real test control plane.

Everything is real: kube-apiserver + etcd + controller-manager + scheduler (infra/testcluster),
the node agent running each trial pod as a local process, both controllers as their own
processes (leader election on), a DB manager process on MariaDB. Each trial pod finishes at once:

- ``--mode push`` (the default): the pod runs ``python -c "import pykatib; pykatib.report_metrics(...)"``;
- ``--mode prepushed``: the pod runs ``python -S -c pass`` and this process pushes the trial's metric
  as soon as the trial's name is issued (Suggestion record), which takes the pods' Python start-up
  (~0.15 CPU-s each) out of the measurement, leaving the controllers and the control plane.

Prints trials/s, the controllers' peak RSS and CPU time, and where the machine's CPU went.

    python controller_bench.py --trials 1000 --parallel 50 [--mode prepushed] [--kcm-qps 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench_processes import Process, cpu_seconds, db_manager, rss_mb
from kubernetes import client, watch

from katib_core import constants
from katib_core import testing as builders
from katib_testcluster import cluster, controlplane, crds, polling
from pykatib import dbmanager


def prepush(api: client.ApiClient, namespace: str, address: str, stop: threading.Event) -> None:
    """Push each trial's metric as soon as its name is issued (``--mode prepushed``).

    Names are taken from the Suggestion record, which the experiment controller writes before it
    creates the Trials, and pushed from a few threads: a push that lagged behind its instantly
    finishing pod would make the trial MetricsUnavailable (Push never waits).
    """
    custom = client.CustomObjectsApi(api)
    channel = dbmanager.open_channel(address)
    db = dbmanager.DBManagerClient(channel)
    pushed: set[str] = set()

    def push(name: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        db.report(name, [dbmanager.encode_metric_log(stamp, "loss", "0.5")], key=dbmanager.new_report_key(), timeout=30)

    stream = watch.Watch()  # type: ignore[no-untyped-call]
    with ThreadPoolExecutor(4) as pool:
        while not stop.is_set():
            for event in stream.stream(  # type: ignore[no-untyped-call]
                custom.list_namespaced_custom_object,
                constants.GROUP,
                constants.VERSION,
                namespace,
                "suggestions",
                timeout_seconds=5,
            ):
                issued = [a["name"] for a in (event["object"].get("status") or {}).get("suggestions") or ()]
                for name in issued:
                    if name not in pushed:
                        pushed.add(name)
                        pool.submit(push, name)
                if stop.is_set():
                    break
    channel.close()


def tune_control_plane(qps: int | None) -> None:
    """Raise the controller-manager's and scheduler's client QPS (defaults 20 and 50) for ``--kcm-qps``.

    Kubernetes' Job controller makes ~5 API calls per Job, so at its default 20 QPS it caps any
    Job-based tuner at ~4 trials/s; production clusters that run many Jobs raise it the same way.
    """
    if not qps:
        return
    extra = [f"--kube-api-qps={qps}", f"--kube-api-burst={2 * qps}"]
    kcm, scheduler = controlplane._controller_manager_argv, controlplane._scheduler_argv
    controlplane._controller_manager_argv = lambda *a: [*kcm(*a), *extra, "--concurrent-gc-syncs=40"]
    controlplane._scheduler_argv = lambda *a: [*scheduler(*a), *extra]


def new_namespace(api: client.ApiClient, name: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    polling.wait_until(
        lambda: any(
            a.secrets
            for a in core.list_namespaced_service_account(name).items
            if a.metadata and a.metadata.name == "default"
        ),
        timeout=60,
        what="the default ServiceAccount's token",
    )


def experiment_body(args: argparse.Namespace, namespace: str, address: str) -> dict[str, Any]:
    if args.mode == "push":
        command = ["python", "-c", "import pykatib; pykatib.report_metrics({'loss': float('${trialParameters.lr}')})"]
    else:
        command = ["python", "-S", "-c", "pass"]
    template = builders.job_template(command)
    # The trials import pykatib: our trial image, which the node agent runs with this interpreter.
    template["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/pykatib/pykatib-trial:v0.1.0"
    template["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": constants.DB_MANAGER_ADDRESS_ENV, "value": address}
    )
    body = builders.experiment_dict(
        "bench", namespace=namespace, max_trials=args.trials, parallel=args.parallel, template=template
    )
    del body["metadata"]["uid"]
    return body


def wait_done(
    custom: client.CustomObjectsApi, namespace: str, controllers: list[Process], args: argparse.Namespace
) -> dict[str, Any]:
    """Poll the Experiment (and sample the controllers' RSS) until it completes; its status."""
    began = time.monotonic()
    status: dict[str, Any] = {}
    while time.monotonic() - began < args.timeout:
        for process in controllers:
            process.sample()
        experiment: Any = custom.get_namespaced_custom_object(
            constants.GROUP, constants.VERSION, namespace, "experiments", "bench"
        )
        status = experiment.get("status") or {}
        held = {c["type"]: c["status"] for c in status.get("conditions") or ()}
        if args.progress:
            done = status.get("trialsSucceeded")
            print(f"{time.monotonic() - began:7.1f}s trials={status.get('trials')} succeeded={done}", flush=True)
        if "True" in (held.get("Succeeded"), held.get("Failed")):
            break
        time.sleep(0.5)
    return status


def run(args: argparse.Namespace) -> dict[str, Any]:
    log_dir = Path(tempfile.mkdtemp(prefix="controller-bench-"))
    tune_control_plane(args.kcm_qps)
    with (
        cluster.running(crd_dir=crds.find_dir()) as running,
        db_manager(log_dir, f"bench_{uuid.uuid4().hex[:8]}") as (dbm, address),
    ):
        api, namespace = running.api_client, "bench"
        new_namespace(api, namespace)
        common = ["--kubeconfig", str(running.kubeconfig), "--namespace", namespace, "--lease-namespace", namespace]
        common += ["--db-manager-address", address, "--workers", str(args.workers), "--log-level", "WARNING"]
        controllers = [
            Process("experiment-controller", ["-m", "katib_experiment_controller", *common], log_dir),
            Process("trial-controller", ["-m", "katib_trial_controller", *common], log_dir),
        ]
        custom = client.CustomObjectsApi(api)
        stop = threading.Event()
        if args.mode == "prepushed":
            threading.Thread(target=prepush, args=(api, namespace, address, stop), daemon=True).start()
        time.sleep(3)  # controllers up and leading
        watched = {p.name: p.popen.pid for p in [*controllers, dbm]}
        watched.update({c.name: c.popen.pid for c in running.control_plane._components})
        cpu0 = {name: cpu_seconds(pid) for name, pid in watched.items()}
        self0, began = os.times(), time.monotonic()
        custom.create_namespaced_custom_object(
            constants.GROUP, constants.VERSION, namespace, "experiments", experiment_body(args, namespace, address)
        )
        status = wait_done(custom, namespace, controllers, args)
        elapsed = time.monotonic() - began
        stop.set()
        now = os.times()
        cpu = {name: round(cpu_seconds(pid) - cpu0[name], 1) for name, pid in watched.items()}
        cpu["bench process (node agent, watches)"] = round(now.user + now.system - self0.user - self0.system, 1)
        cpu["trial pods (reaped children)"] = round(
            now.children_user + now.children_system - self0.children_user - self0.children_system, 1
        )
        for process in controllers:
            process.sample()
        result = {
            "trials": args.trials,
            "parallel": args.parallel,
            "mode": args.mode,
            "kcm_qps": args.kcm_qps,
            "succeeded": status.get("trialsSucceeded"),
            "other": {
                k: status.get(k) for k in ("trialsFailed", "trialMetricsUnavailable", "trialsRunning", "trialsPending")
            },
            "seconds": round(elapsed, 1),
            "trials_per_second": round((status.get("trialsSucceeded") or 0) / elapsed, 2),
            "peak_rss_mb": {p.name: round(max(p.peak_rss, rss_mb(p.popen.pid, "VmHWM")), 1) for p in controllers},
            "cpu_seconds": cpu,
            "cpu_count": os.cpu_count(),
            "logs": str(log_dir),
        }
        for process in controllers:
            process.stop()
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=50, help="parallelTrialCount (the node takes 250 pods)")
    parser.add_argument("--workers", type=int, default=8, help="reconcile workers per controller")
    parser.add_argument("--mode", choices=["push", "prepushed"], default="push")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument(
        "--kcm-qps", type=int, help="raise the controller-manager's/scheduler's client QPS (default: theirs)"
    )
    parser.add_argument("--progress", action="store_true", help="print the experiment's counts every 0.5 s")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    result = run(args)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["succeeded"] == args.trials else 1


if __name__ == "__main__":
    sys.exit(main())
