"""Benchmark the admission webhook: latency at a fixed rate over TLS, and certificate rotation under load.

    benchmarks/run_webhook_bench.sh            # builds the pexes, then runs this

The packaged ``katib-webhook`` runs pinned to one core (``taskset -c 0``, ``--standalone``: no API
server, so ``/mutate-pod`` answers from the Pod alone); ``h2load`` (HTTP/1.1 over TLS, as the
kube-apiserver calls webhooks) sends captured AdmissionReviews at a fixed rate from the other core.
Per-request latencies come from ``h2load --log-file``. Measured:

1. p50/p99/max latency at ``--rate`` reviews/s for each webhook (target: p99 ≤ 10 ms at 200/s);
2. a run at that rate while the certificate is replaced every few seconds (same CA, as
   cert-manager renews), with a second client opening a new TLS connection per request so every
   rotation meets fresh handshakes — target: zero failed requests;
3. with ``--with-cluster``: ``/mutate-pod`` for a Pod of a Trial's Job against the real test
   kube-apiserver (``infra/testcluster``; ``PYKATIB_CRD_DIR`` or a repo checkout for the CRDs), so
   every review GETs the Job and the Trial — the path every trial Pod takes.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from katib_webhook import certificates
from katib_webhook.settings import TlsSettings

#: AdmissionReviews captured from the test cluster's kube-apiserver (a resource of katib_webhook).
TESTDATA = importlib.resources.files("katib_webhook") / "testdata"


@dataclass
class Run:
    label: str
    requests: int
    succeeded: int
    failed: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    rate: float


def reviews(workdir: Path) -> dict[str, Path]:
    """AdmissionReview bodies captured from the test cluster's kube-apiserver, one file per webhook."""
    pod = json.loads((TESTDATA / "pod-review.json").read_text())
    experiment = json.loads((TESTDATA / "experiment-review.json").read_text())
    validate = json.loads(json.dumps(experiment))
    spec = validate["request"]["object"]["spec"]
    spec["parameters"][2]["feasibleSpace"] = {"list": ["x", "y"], "distribution": "uniform"}
    spec.update(parallelTrialCount=3, resumePolicy="Never")
    spec["objective"]["metricStrategies"] = [{"name": "result", "value": "max"}, {"name": "loss", "value": "max"}]
    spec["trialTemplate"]["successCondition"] = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
    spec["trialTemplate"]["failureCondition"] = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
    for parameter in spec["parameters"]:
        parameter["feasibleSpace"].setdefault("distribution", "uniform")
    bodies = {"/mutate-pod": pod, "/mutate-experiment": experiment, "/validate-experiment": validate}
    files = {}
    for path, body in bodies.items():
        files[path] = workdir / f"{path.strip('/')}.json"
        files[path].write_text(json.dumps(body))
    return files


class Webhook:
    """The packaged webhook, pinned to CPU 0 (``--standalone`` unless a kubeconfig is given)."""

    def __init__(self, pex: Path, tls: TlsSettings, cpu: str, kubeconfig: Path | None = None) -> None:
        api = ["--kubeconfig", str(kubeconfig)] if kubeconfig else ["--standalone"]
        command = [
            "taskset", "-c", cpu, sys.executable, str(pex), *api, "--host", "127.0.0.1", "--port", "0",
            "--cert-dir", str(tls.cert_dir), "--cert-reload-interval", "1s", "--log-level", "WARNING",
        ]  # fmt: skip
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "serving on https://" not in line:
            self.proc.kill()
            raise RuntimeError(f"katib-webhook did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def h2load(url: str, body: Path, *, rate: int, seconds: int, clients: int, cpu: str, log: Path) -> Run:
    """``rate`` requests/s for ``seconds`` from ``clients`` connections; latencies from the per-request log."""
    total = rate * seconds
    command = [
        "taskset", "-c", cpu, "h2load", "--h1", "-n", str(total), "-c", str(clients), "--rps", str(rate // clients),
        "-d", str(body), "-H", "Content-Type: application/json", "--log-file", str(log), url,
    ]  # fmt: skip
    log.unlink(missing_ok=True)  # h2load appends to its log file
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds * 4 + 120).stdout
    counts = next(line for line in out.splitlines() if line.startswith("requests:"))
    numbers = {part.split()[1]: int(part.split()[0]) for part in counts.removeprefix("requests:").split(",")}
    codes = next((line for line in out.splitlines() if line.startswith("status codes:")), "")
    latencies = sorted(int(line.split("\t")[2]) / 1000 for line in log.read_text().splitlines() if line.strip())
    failed = numbers["failed"] + numbers["errored"] + numbers["timeout"]
    if "2xx" in codes:
        failed += numbers["done"] - int(codes.split()[2])  # any non-2xx
    return Run(
        label=url.rsplit("/", 1)[1],
        requests=numbers["total"],
        succeeded=numbers["succeeded"],
        failed=failed,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        max_ms=latencies[-1],
        rate=rate,
    )


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


class Handshakes:
    """A new TLS connection (verified against the CA) per request, until stopped; counts failures and certificates."""

    def __init__(self, port: int, tls: TlsSettings, body: bytes) -> None:
        self.port, self.tls, self.body = port, tls, body
        self.stop = threading.Event()
        self.done = 0
        self.failures: list[str] = []
        self.serials: set[int] = set()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import http.client

        context = ssl.create_default_context(cafile=str(self.tls.ca_path))
        while not self.stop.is_set():
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=30)
            try:
                conn.request("POST", "/mutate-pod", body=self.body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                ok = response.status == 200 and json.loads(response.read())["response"]["allowed"]
                assert conn.sock is not None
                der = conn.sock.getpeercert(binary_form=True)
                assert der is not None
                self.serials.add(x509.load_der_x509_certificate(der).serial_number)
                if not ok:
                    self.failures.append(f"status {response.status}")
            except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
                self.failures.append(repr(exc))
            finally:
                conn.close()
            self.done += 1
            time.sleep(0.02)


def rotation_run(
    webhook: Webhook, tls: TlsSettings, ca: certificates.Generated, body: Path, args: argparse.Namespace, log: Path
) -> dict[str, object]:
    """The rate run on /mutate-pod while the certificate is renewed ``args.rotations`` times."""
    handshakes = Handshakes(webhook.port, tls, body.read_bytes())
    handshakes.thread.start()
    result: dict[str, Run] = {}

    def load() -> None:
        url = f"https://127.0.0.1:{webhook.port}/mutate-pod"
        result["run"] = h2load(
            url, body, rate=args.rate, seconds=args.seconds, clients=args.clients, cpu=args.load_cpu, log=log
        )

    loader = threading.Thread(target=load)
    loader.start()
    issuer = (x509.load_pem_x509_certificate(ca.ca_cert), ca.ca_key)
    interval = args.seconds / (args.rotations + 1)
    for _ in range(args.rotations):
        time.sleep(interval)
        renewed = certificates.generate(dns_names=tls.dns_names, ip_addresses=tls.ip_addresses, ca=issuer)
        certificates.write(tls.key_path, renewed.key, private=True)
        certificates.write(tls.cert_path, renewed.cert)
    loader.join()
    handshakes.stop.set()
    handshakes.thread.join(60)
    run = result["run"]
    return {
        "h2load": run.__dict__,
        "rotations": args.rotations,
        "new_connections": handshakes.done,
        "new_connection_failures": len(handshakes.failures),
        "certificates_seen": len(handshakes.serials),
        "failures": handshakes.failures[:5],
    }


def owner_lookup_run(args: argparse.Namespace, tls: TlsSettings, workdir: Path) -> Run:
    """/mutate-pod for the Pod of a Trial's Job, against the test cluster's kube-apiserver."""
    from kubernetes import client

    from katib_testcluster import cluster, crds

    with cluster.running(crd_dir=crds.find_dir()) as running:
        api: Any = client.CustomObjectsApi(running.api_client)
        core: Any = client.CoreV1Api(running.api_client)  # takes plain dicts
        core.create_namespace({"metadata": {"name": "bench"}})
        spec = {
            "primaryContainerName": "training-container",
            "metricsCollector": {"collector": {"kind": "Push"}},
            "objective": {"type": "maximize", "objectiveMetricName": "result"},
        }
        body = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Trial", "metadata": {"name": "trial-1"}, "spec": spec}
        trial = api.create_namespaced_custom_object("kubeflow.org", "v1beta1", "bench", "trials", body)
        job = json.loads((TESTDATA / "job.json").read_text())
        job["metadata"] = {"name": "trial-1", "ownerReferences": [{
            "apiVersion": "kubeflow.org/v1beta1", "kind": "Trial", "name": "trial-1", "uid": trial["metadata"]["uid"],
        }]}  # fmt: skip
        job["spec"] = {"template": job["spec"]["template"]}
        job["spec"]["template"]["metadata"] = {}
        batch: Any = client.BatchV1Api(running.api_client)
        made = batch.create_namespaced_job("bench", job)
        review = json.loads((TESTDATA / "pod-review.json").read_text())
        review["request"]["namespace"] = "bench"
        owner = review["request"]["object"]["metadata"]["ownerReferences"][0]
        owner.update(name="trial-1", uid=made.metadata.uid)
        review_file = workdir / "owned-pod.json"
        review_file.write_text(json.dumps(review))
        webhook = Webhook(args.webhook_pex, tls, args.webhook_cpu, kubeconfig=running.kubeconfig)
        try:
            url = f"https://127.0.0.1:{webhook.port}/mutate-pod"
            h2load(
                url,
                review_file,
                rate=args.rate,
                seconds=3,
                clients=args.clients,
                cpu=args.load_cpu,
                log=workdir / "w.log",
            )
            run = h2load(
                url, review_file, rate=args.rate, seconds=args.seconds, clients=args.clients, cpu=args.load_cpu,
                log=workdir / "owned.log",
            )  # fmt: skip
        finally:
            webhook.stop()
    run.label = "mutate-pod, Trial owner (2 GETs)"
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webhook-pex", type=Path, default=Path("dist/katib-webhook.pex"))
    parser.add_argument("--rate", type=int, default=200, help="AdmissionReviews per second")
    parser.add_argument("--seconds", type=int, default=30, help="length of each run")
    parser.add_argument("--clients", type=int, default=4, help="h2load connections (the apiserver keeps a few)")
    parser.add_argument("--rotations", type=int, default=5, help="certificate renewals during the rotation run")
    parser.add_argument("--webhook-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--with-cluster", action="store_true", help="also measure owner lookups on the test cluster")
    args = parser.parse_args(argv)
    for tool in ("h2load", "taskset"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is missing (apt-get install nghttp2-client util-linux)")
    workdir = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    try:
        tls = TlsSettings(
            cert_dir=workdir / "certs", dns_names=("katib-webhook.kubeflow.svc",), ip_addresses=("127.0.0.1",)
        )
        tls.cert_dir.mkdir()
        ca = certificates.generate(dns_names=tls.dns_names, ip_addresses=tls.ip_addresses)
        certificates.write(tls.ca_path, ca.ca_cert)
        certificates.write(tls.key_path, ca.key, private=True)
        certificates.write(tls.cert_path, ca.cert)
        bodies = reviews(workdir)
        webhook = Webhook(args.webhook_pex, tls, args.webhook_cpu)
        try:
            runs = []
            for path, body in bodies.items():
                url = f"https://127.0.0.1:{webhook.port}{path}"
                h2load(
                    url,
                    body,
                    rate=args.rate,
                    seconds=3,
                    clients=args.clients,
                    cpu=args.load_cpu,
                    log=workdir / "warmup.log",
                )
                runs.append(
                    h2load(
                        url,
                        body,
                        rate=args.rate,
                        seconds=args.seconds,
                        clients=args.clients,
                        cpu=args.load_cpu,
                        log=workdir / "run.log",
                    )
                )
            rotation = rotation_run(webhook, tls, ca, bodies["/mutate-pod"], args, workdir / "rotation.log")
            rss = _rss_kib(webhook.proc.pid)
        finally:
            webhook.stop()
        if args.with_cluster:
            runs.append(owner_lookup_run(args, tls, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    setup = f"h2load --h1 over TLS on CPU {args.load_cpu}, {args.clients} connections"
    print(f"\nkatib-webhook on CPU {args.webhook_cpu}; {setup}")
    print("| webhook | rate/s | requests | failed | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|")
    for run in runs:
        row = (
            run.label,
            f"{run.rate:.0f}",
            run.requests,
            run.failed,
            *(f"{v:.2f}" for v in (run.p50_ms, run.p99_ms, run.max_ms)),
        )
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    r = rotation["h2load"]
    print(
        f"\nrotation: {rotation['rotations']} renewals in {args.seconds} s at {args.rate}/s on /mutate-pod:"
        f" h2load {r['requests']} requests, {r['failed']} failed, p99 {r['p99_ms']:.2f} ms;"  # type: ignore[index]
        f" {rotation['new_connections']} new TLS connections, {rotation['new_connection_failures']} failed,"
        f" {rotation['certificates_seen']} certificates served"
    )
    print(f"webhook RSS after the runs: {rss / 1024:.1f} MiB")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"runs": [run.__dict__ for run in runs], "rotation": rotation, "rss_kib": rss}, indent=1)
        )
    ok = all(run.failed == 0 for run in runs) and rotation["new_connection_failures"] == 0 and r["failed"] == 0  # type: ignore[index]
    return 0 if ok else 1


def _rss_kib(pid: int) -> int:
    # taskset execs the interpreter, so the pid is the webhook's.
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
