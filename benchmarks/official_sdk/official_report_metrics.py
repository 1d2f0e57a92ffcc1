"""Time the official kubeflow-katib ``report_metrics()`` (resolve katib-compat); prints one JSON line.

Run by ``report_metrics_bench.py`` in its own process, against the same DB manager:
``official-report-metrics.pex --address HOST:PORT --calls N``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid

from kubeflow import katib
from kubeflow.katib.utils import utils


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()
    # report_metrics reads the service-account namespace first; there is no pod here.
    utils.get_current_k8s_namespace = lambda: "default"
    os.environ["KATIB_TRIAL_NAME"] = f"official-{uuid.uuid4().hex[:10]}"
    for step in range(args.warmup):
        katib.report_metrics({"loss": 1 / (step + 1)}, db_manager_address=args.address)
    latencies = []
    for step in range(args.calls):
        start = time.perf_counter_ns()
        katib.report_metrics({"loss": 1 / (step + 1)}, db_manager_address=args.address)
        latencies.append((time.perf_counter_ns() - start) / 1e6)
    cuts = statistics.quantiles(latencies, n=100)
    print(json.dumps({"p50_ms": cuts[49], "p99_ms": cuts[98], "mean_ms": statistics.fmean(latencies)}))


if __name__ == "__main__":
    main()
