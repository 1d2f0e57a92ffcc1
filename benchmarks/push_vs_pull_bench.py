"""Push vs pull: what a trial costs and how soon its metric shows, for Push and for the StdOut sidecar.

Everything is real and runs at once: the test control plane (infra/testcluster; the node agent
runs each Pod's containers as local processes, emptyDirs bind-mounted, shareProcessNamespace
honoured), ``katib-webhook`` injecting the collector sidecar, both controllers and a DB manager on
MariaDB, all as processes. Two Experiments of ``--trials`` trials run side by side (``--parallel``
each), with the same tiny training program: ``--steps`` losses, ``--step-seconds`` apart, either
pushed (``pykatib.report_metrics``) or printed (``loss=...``, collected by the sidecar).

Per trial: the processes the Pod ran (sampled from ``/proc``: the agent's container processes and
their children), each container's CPU-seconds and peak RSS (``wait4`` of the process tree, from
the node agent), and the latency from the final metric's emission (the training writes the time
to ``$HOME/emitted.json`` right before it pushes or prints that metric) to (a) its row in
``GetObservationLog`` (polled every ``--poll-ms``) and (b) its value in the Trial's
``.status.observation`` (a watch).

    python push_vs_pull_bench.py --trials 20 --parallel 2 [--json out.json]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from bench_processes import Process, db_manager
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from katib_core import constants
from katib_core import testing as builders
from katib_testcluster import cluster, crds, pod_runner, polling
from pykatib import dbmanager

MODES = ("Push", "StdOut")
#: Processes of the node agent's runtime emulation, not of the Pod (see katib_testcluster.pod_runner).
PLUMBING = frozenset({"time", "nsenter"})
INJECTION = {"katib.kubeflow.org/metrics-collector-injection": "enabled"}
#: The training program (argv: mode, lr, steps, seconds between steps); one for both modes.
TRAINING = """
import json, os, sys, time
mode, lr, steps, pause = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
if mode == "Push":
    import pykatib
for step in range(steps):
    loss = round((lr - 0.05) ** 2 + 1.0 / (step + 1), 6)
    if step == steps - 1:
        emitted = os.path.join(os.environ["HOME"], "emitted.json")
        with open(emitted + ".tmp", "w") as out:
            json.dump({"time": time.time(), "value": loss}, out)
        os.rename(emitted + ".tmp", emitted)
    else:
        time.sleep(pause)
    if mode == "Push":
        pykatib.report_metrics({"loss": loss})
    else:
        print(f"loss={loss}", flush=True)
"""


@dataclass
class TrialRecord:
    """What was seen of one trial."""

    mode: str
    pod: str | None = None
    pids: set[int] = field(default_factory=set)  # the agent's container processes
    processes: set[tuple[int, int]] = field(default_factory=set)  # (pid, start time) seen in the Pod
    emitted_at: float | None = None
    value: float | None = None
    in_db_at: float | None = None
    in_status_at: float | None = None
    usage: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def webhook(running: cluster.Cluster, db_address: str, manifests: Path, log_dir: Path) -> Iterator[None]:
    """``katib-webhook`` (the sidecar: this interpreter's collector) registered with infra/webhook's configurations."""
    cert_dir = log_dir / "webhook-cert"
    cert_dir.mkdir()
    pair = running.pki.issue_serving_cert("katib-webhook-bench")
    (cert_dir / "tls.crt").write_bytes(pair.cert.read_bytes())
    (cert_dir / "tls.key").write_bytes(pair.key.read_bytes())
    collector = f"{sys.executable} -m katib_metrics_collector"  # the node agent runs commands, not images
    args = ["-m", "katib_webhook", "--host", "127.0.0.1", "--port", "0", "--cert-dir", str(cert_dir)]
    args += ["--kubeconfig", str(running.kubeconfig), "--db-manager-address", db_address]
    args += ["--collector-command", collector, "--no-patch-ca-bundle"]
    hook = Process("webhook", args, log_dir, stdout_pipe=True)
    admission: Any = client.AdmissionregistrationV1Api(running.api_client)
    try:
        assert hook.popen.stdout is not None
        line = hook.popen.stdout.readline().decode()
        if "serving on https://127.0.0.1:" not in line:
            raise RuntimeError(f"katib-webhook did not start: {line}\n{hook.log_path.read_text()}")
        url = line.strip().rsplit(" ", 1)[1]
        mutating, validating = (
            yaml.safe_load((manifests / f"{kind}-webhook-configuration.yaml").read_text())
            for kind in ("mutating", "validating")
        )
        for manifest in (mutating, validating):
            for hook_spec in manifest["webhooks"]:
                path = hook_spec["clientConfig"]["service"]["path"]
                ca = base64.b64encode(running.pki.ca_pem).decode()
                hook_spec["clientConfig"] = {"url": url + path, "caBundle": ca}
        admission.create_mutating_webhook_configuration(mutating)
        admission.create_validating_webhook_configuration(validating)
        yield
    finally:
        hook.stop()


def new_namespace(api: client.ApiClient, name: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=INJECTION)))
    polling.wait_until(
        lambda: any(
            a.secrets
            for a in core.list_namespaced_service_account(name).items
            if a.metadata and a.metadata.name == "default"
        ),
        timeout=60,
        what="the default ServiceAccount's token",
    )


def wait_for_webhook(api: client.ApiClient, namespace: str) -> None:
    """Until the API server calls the webhook (it picks configurations up asynchronously)."""
    custom = client.CustomObjectsApi(api)
    bad: dict[str, Any] = {"apiVersion": f"{constants.GROUP}/{constants.VERSION}", "kind": "Experiment"}
    bad |= {"metadata": {"name": "probe"}, "spec": {"maxTrialCount": 0}}

    def denied() -> bool:
        try:
            custom.create_namespaced_custom_object(
                constants.GROUP, constants.VERSION, namespace, "experiments", bad, dry_run="All"
            )
        except ApiException as exc:
            return exc.status == 400 and "katib.kubeflow.org" in str(exc.body)
        return False

    polling.wait_until(denied, timeout=60, what="the API server to call katib-webhook", interval=0.5)


def experiment_body(mode: str, namespace: str, args: argparse.Namespace) -> dict[str, Any]:
    command = ["python", "-c", TRAINING, mode, "${trialParameters.lr}", str(args.steps), str(args.step_seconds)]
    template = builders.job_template(command)
    # The trials import pykatib: our trial image, which the node agent runs with this interpreter.
    template["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/pykatib/pykatib-trial:v0.1.0"
    body = builders.experiment_dict(
        mode.lower(), namespace=namespace, max_trials=args.trials, parallel=args.parallel, kind=mode, template=template
    )
    body["spec"]["objective"]["additionalMetricNames"] = []
    del body["metadata"]["uid"]
    return body


class Observer:
    """Watches Pods and Trials, polls emission files and the DB manager, samples Pod processes."""

    def __init__(self, running: cluster.Cluster, namespace: str, address: str, poll_seconds: float) -> None:
        self.trials: dict[str, TrialRecord] = {}
        self._running = running
        self._namespace = namespace
        self._poll = poll_seconds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._channel = dbmanager.open_channel(address)
        self._db = dbmanager.DBManagerClient(self._channel)
        self._threads = [
            threading.Thread(target=self._watch_pods, daemon=True),
            threading.Thread(target=self._watch_trials, daemon=True),
            threading.Thread(target=self._poll_loop, daemon=True),
        ]

    def __enter__(self) -> Observer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        self._channel.close()

    def _record(self, trial: str, experiment: str) -> TrialRecord:
        with self._lock:
            mode = next(m for m in MODES if m.lower() == experiment)
            return self.trials.setdefault(trial, TrialRecord(mode))

    def _watch_pods(self) -> None:
        core = client.CoreV1Api(self._running.api_client)
        while not self._stop.is_set():
            for event in watch.Watch().stream(  # type: ignore[no-untyped-call]
                core.list_namespaced_pod, self._namespace, timeout_seconds=2
            ):
                pod = event["object"]
                labels = pod.metadata.labels or {}
                trial, experiment = labels.get(constants.TRIAL_LABEL), labels.get(constants.EXPERIMENT_LABEL)
                if trial and experiment:
                    record = self._record(trial, experiment)
                    record.pod = pod.metadata.name
                    for status in (pod.status.container_statuses if pod.status else None) or ():
                        if status.container_id and status.container_id.startswith("process://"):
                            record.pids.add(int(status.container_id.removeprefix("process://")))
                if self._stop.is_set():
                    return

    def _watch_trials(self) -> None:
        custom = client.CustomObjectsApi(self._running.api_client)
        while not self._stop.is_set():
            for event in watch.Watch().stream(  # type: ignore[no-untyped-call]
                custom.list_namespaced_custom_object,
                constants.GROUP,
                constants.VERSION,
                self._namespace,
                "trials",
                timeout_seconds=2,
            ):
                now = time.time()
                trial = event["object"]
                experiment = trial["metadata"].get("labels", {}).get(constants.EXPERIMENT_LABEL)
                if not experiment:
                    continue
                record = self._record(trial["metadata"]["name"], experiment)
                if record.value is None and record.pod is not None:
                    self._read_emission(record)  # the poll loop may not have seen the file yet
                metrics = ((trial.get("status") or {}).get("observation") or {}).get("metrics") or ()
                latest = next((m.get("latest") for m in metrics if m.get("name") == "loss"), None)
                if record.in_status_at is None and record.value is not None and _same(latest, record.value):
                    record.in_status_at = now
                if self._stop.is_set():
                    return

    def _poll_loop(self) -> None:
        while not self._stop.wait(self._poll):
            with self._lock:
                records = list(self.trials.items())
            for name, record in records:
                if record.pod is None or record.in_db_at is not None:
                    continue
                self._sample_processes(record)
                if record.emitted_at is None:
                    self._read_emission(record)
                if record.emitted_at is not None:
                    rows = self._db.get(name, metric_name="loss", timeout=30)
                    if any(_same(row.metric.value, record.value) for row in rows):
                        record.in_db_at = time.time()

    def _read_emission(self, record: TrialRecord) -> None:
        assert record.pod is not None
        with contextlib.suppress(KeyError, OSError, ValueError):
            pod_dir = self._running.node_agent.log_path(self._namespace, record.pod).parent.parent
            emitted = json.loads((pod_dir / "emitted.json").read_text())
            record.value = float(emitted["value"])
            record.emitted_at = float(emitted["time"])

    def _sample_processes(self, record: TrialRecord) -> None:
        """The Pod's processes: the agent's container processes and their descendants, without
        the node agent's stand-ins for a runtime (GNU time measuring RSS, nsenter)."""
        queue = list(record.pids)
        while queue:
            pid = queue.pop()
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{pid}/stat").read_text()
                name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
                if name not in PLUMBING:
                    record.processes.add((pid, int(rest[19])))
                for task in Path(f"/proc/{pid}/task").iterdir():
                    queue += [int(child) for child in (task / "children").read_text().split()]

    def sample_now(self) -> None:
        with self._lock:
            records = list(self.trials.values())
        for record in records:
            if record.in_db_at is None:
                self._sample_processes(record)


def _same(value: object, expected: float | None) -> bool:
    try:
        return expected is not None and value is not None and abs(float(str(value)) - expected) < 1e-9
    except ValueError:
        return False


def wait_done(api: client.ApiClient, namespace: str, timeout: float) -> dict[str, dict[str, Any]]:
    custom = client.CustomObjectsApi(api)

    def statuses() -> dict[str, dict[str, Any]] | None:
        found = {}
        for mode in MODES:
            body: Any = custom.get_namespaced_custom_object(
                constants.GROUP, constants.VERSION, namespace, "experiments", mode.lower()
            )
            status = body.get("status") or {}
            held = {c["type"]: c["status"] for c in status.get("conditions") or ()}
            if "True" not in (held.get("Succeeded"), held.get("Failed")):
                return None
            found[mode] = status
        return found

    return polling.wait_until(statuses, timeout=timeout, what="both experiments to complete", interval=0.5)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summarize(trials: dict[str, TrialRecord]) -> dict[str, dict[str, Any]]:
    """Per mode: medians of the per-trial costs, p50/p95 of both latencies, the trials counted."""
    out: dict[str, dict[str, Any]] = {}
    for mode in MODES:
        records = [r for r in trials.values() if r.mode == mode and r.usage]
        usage = [r.usage for r in records]

        db = [r.in_db_at - r.emitted_at for r in records if r.in_db_at and r.emitted_at]
        status = [r.in_status_at - r.emitted_at for r in records if r.in_status_at and r.emitted_at]
        sidecars = sorted({name for u in usage for name in u if name != "training-container"})
        out[mode] = {
            "trials": len(records),
            "containers": statistics.median(len(u) for u in usage) if usage else 0,
            "processes": statistics.median(len(r.processes) for r in records) if records else 0,
            "training_cpu_s": _median(usage, "cpu_seconds", "training-container"),
            "training_rss_mib": _median(usage, "max_rss_mib", "training-container"),
            "sidecar": sidecars[0] if sidecars else None,
            "sidecar_cpu_s": _median(usage, "cpu_seconds", sidecars[0]) if sidecars else 0.0,
            "sidecar_rss_mib": _median(usage, "max_rss_mib", sidecars[0]) if sidecars else 0.0,
            "pod_cpu_s": _median(usage, "cpu_seconds"),
            "pod_rss_mib": _median(usage, "max_rss_mib"),
            "db_latency_s": {"n": len(db), "p50": percentile(db, 50), "p95": percentile(db, 95)},
            "status_latency_s": {"n": len(status), "p50": percentile(status, 50), "p95": percentile(status, 95)},
        }
    return out


def _median(usage: list[dict[str, Any]], key: str, container: str | None = None) -> float:
    """The median over trials of one container's `key` (None: summed over the Pod's containers)."""
    values = [
        sum(c[key] for c in u.values()) if container is None else u.get(container, {}).get(key, 0.0) for u in usage
    ]
    return statistics.median(values) if values else float("nan")


def table(summary: dict[str, dict[str, Any]]) -> str:
    push, pull = summary["Push"], summary["StdOut"]

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b else "-"

    rows = [
        ("trials measured", f"{push['trials']}", f"{pull['trials']}", ""),
        ("containers per trial", f"{push['containers']:g}", f"{pull['containers']:g}", ""),
        ("processes per trial (sampled)", f"{push['processes']:g}", f"{pull['processes']:g}", ""),
        ("training CPU-s", f"{push['training_cpu_s']:.3f}", f"{pull['training_cpu_s']:.3f}", ""),
        ("training peak RSS MiB", f"{push['training_rss_mib']:.1f}", f"{pull['training_rss_mib']:.1f}", ""),
        ("sidecar CPU-s (extra per trial)", f"{push['sidecar_cpu_s']:.3f}", f"{pull['sidecar_cpu_s']:.3f}", ""),
        ("sidecar peak RSS MiB (extra)", f"{push['sidecar_rss_mib']:.1f}", f"{pull['sidecar_rss_mib']:.1f}", ""),
        ("pod CPU-s, all containers", f"{push['pod_cpu_s']:.3f}", f"{pull['pod_cpu_s']:.3f}",
         ratio(push["pod_cpu_s"], pull["pod_cpu_s"])),
        ("pod peak RSS MiB, summed", f"{push['pod_rss_mib']:.1f}", f"{pull['pod_rss_mib']:.1f}",
         ratio(push["pod_rss_mib"], pull["pod_rss_mib"])),
    ]  # fmt: skip
    for key, label in (
        ("db_latency_s", "emission -> GetObservationLog"),
        ("status_latency_s", "emission -> Trial status"),
    ):
        for q in ("p50", "p95"):
            a, b = push[key][q], pull[key][q]
            rows.append((f"{label} {q} s", f"{a:.3f}", f"{b:.3f}", ratio(a, b)))
    widths = [max(len(r[i]) for r in [("measure", "Push", "StdOut", "Push/StdOut"), *rows]) for i in range(4)]
    lines = []
    for row in [("measure", "Push", "StdOut", "Push/StdOut"), tuple("-" * w for w in widths), *rows]:
        lines.append("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    log_dir = Path(tempfile.mkdtemp(prefix="push-vs-pull-bench-"))
    load_before = os.getloadavg()
    with (
        cluster.running(crd_dir=crds.find_dir()) as running,
        db_manager(log_dir, f"pvp_{uuid.uuid4().hex[:8]}") as (_, address),
        webhook(running, address, args.webhook_manifests, log_dir),
    ):
        api, namespace = running.api_client, "bench"
        new_namespace(api, namespace)
        wait_for_webhook(api, namespace)
        common = ["--kubeconfig", str(running.kubeconfig), "--namespace", namespace, "--lease-namespace", namespace]
        common += ["--db-manager-address", address, "--log-level", "WARNING"]
        controllers = [
            Process("experiment-controller", ["-m", "katib_experiment_controller", *common], log_dir),
            Process("trial-controller", ["-m", "katib_trial_controller", *common], log_dir),
        ]
        try:
            began = time.monotonic()
            with Observer(running, namespace, address, args.poll_ms / 1000) as observer:
                custom = client.CustomObjectsApi(api)
                for mode in MODES:
                    custom.create_namespaced_custom_object(
                        constants.GROUP,
                        constants.VERSION,
                        namespace,
                        "experiments",
                        experiment_body(mode, namespace, args),
                    )
                statuses = wait_done(api, namespace, args.timeout)
                polling.wait_until(  # the last status write may trail the experiment's completion
                    lambda: all(r.in_status_at for r in observer.trials.values() if r.emitted_at),
                    timeout=30,
                    what="every trial's observation",
                    interval=0.2,
                )
            elapsed = time.monotonic() - began
        finally:
            for process in controllers:
                process.stop()
        for record in observer.trials.values():
            if record.pod is not None:
                with contextlib.suppress(KeyError):
                    usage = running.node_agent.usage(namespace, record.pod)
                    record.usage = {name: _usage_dict(u) for name, u in usage.items()}
    summary = summarize(observer.trials)
    return {
        "trials_per_mode": args.trials,
        "parallel_per_mode": args.parallel,
        "steps": args.steps,
        "step_seconds": args.step_seconds,
        "seconds": round(elapsed, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "experiments": {
            m: {k: s.get(k) for k in ("trials", "trialsSucceeded", "trialsFailed")} for m, s in statuses.items()
        },
        "summary": summary,
        "trials": {
            name: vars(r) | {"pids": sorted(r.pids), "processes": len(r.processes)}
            for name, r in observer.trials.items()
        },
        "logs": str(log_dir),
    }


def _usage_dict(usage: pod_runner.Usage) -> dict[str, Any]:
    return {"runs": usage.runs, "cpu_seconds": usage.cpu_seconds, "max_rss_mib": (usage.max_rss_kib or 0) / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20, help="trials per mode")
    parser.add_argument("--parallel", type=int, default=2, help="parallelTrialCount of each experiment")
    parser.add_argument("--steps", type=int, default=5, help="losses each training emits")
    parser.add_argument("--step-seconds", type=float, default=0.2, help="pause between two losses")
    parser.add_argument("--poll-ms", type=float, default=10, help="interval of the GetObservationLog polls")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument(
        "--webhook-manifests", type=Path, default=Path(os.environ.get("PYKATIB_WEBHOOK_DIR", "infra/webhook"))
    )
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    result = run(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({k: v for k, v in result.items() if k not in ("trials", "summary")}, indent=2))
    print(table(result["summary"]))
    counts = [s["trialsSucceeded"] for s in result["experiments"].values()]
    return 0 if counts == [args.trials, args.trials] else 1


if __name__ == "__main__":
    sys.exit(main())
