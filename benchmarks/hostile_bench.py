"""Hostile input against the packaged DB manager at scale: counts and resident memory per fault.

    benchmarks/run_hostile_bench.sh [--malformed 20000 --oversized 64 --idle 5000]

The faults of services/dbmanager/katib_dbmanager/faults_test.py (katib_testsupport.hostile),
larger: calls cut short at the framing level, compressed flags and bad grpc-timeouts, requests
announcing 256 MiB each, and idle connections held against a soft limit of 1,024 open files while
a client reports. Each row prints what was sent, how it was answered and the DB manager's RSS
before and after; the script exits non-zero if any call went unanswered or a report was lost.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import grpc
from katib_testsupport import hostile
from katib_testsupport.processes import DBManagerProcess

from katib_api.v1beta1 import api_pb2, api_pb2_grpc

REPORT_PATH = "/api.v1.beta1.DBManager/ReportObservationLog"


def reports(address: str, trial: str, count: int) -> int:
    """Report ``count`` points; how many were acknowledged."""
    acknowledged = 0
    with grpc.insecure_channel(address) as channel:
        stub = api_pb2_grpc.DBManagerStub(channel)
        for value in range(count):
            log = api_pb2.MetricLog(
                time_stamp="2024-01-01T00:00:00Z", metric=api_pb2.Metric(name="m", value=str(value))
            )
            request = api_pb2.ReportObservationLogRequest(
                trial_name=trial, observation_log=api_pb2.ObservationLog(metric_logs=[log])
            )
            stub.ReportObservationLog(request, timeout=30)
            acknowledged += 1
    return acknowledged


def stored(address: str, trial: str) -> int:
    with grpc.insecure_channel(address) as channel:
        reply = api_pb2_grpc.DBManagerStub(channel).GetObservationLog(
            api_pb2.GetObservationLogRequest(trial_name=trial), timeout=30
        )
    return len({log.metric.value for log in reply.observation_log.metric_logs})


def main(argv: Sequence[str] | None = None) -> int:
    """Run every fault against one DB manager process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-manager-pex", type=Path, default=Path("dist/katib-db-manager.pex"))
    parser.add_argument("--malformed", type=int, default=20_000, help="calls cut short (a multiple of 400)")
    parser.add_argument("--oversized", type=int, default=64, help="requests announcing 256 MiB each")
    parser.add_argument("--idle", type=int, default=5_000, help="idle connections")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < args.idle + 256:
        raise SystemExit(f"--idle {args.idle} needs {args.idle + 256} open files; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, args.idle + 256), hard))
    rows: list[tuple[str, Counter[str], int, int]] = []
    with (
        tempfile.TemporaryDirectory(prefix="pykatib-hostile-") as root,
        DBManagerProcess(
            "--db-url",
            f"sqlite:///{root}/katib.db",
            "--log-level",
            "ERROR",
            open_files=(1024, hard),
            pex=args.db_manager_pex.resolve(),
        ) as proc,
    ):
        address, pid = proc.address, proc.proc.pid
        reports(address, "warm-up", 500)

        def measure(name: str, run: object) -> None:
            before = hostile.rss_kib(pid)
            counts = run()  # type: ignore[operator]
            rows.append((name, counts, before, hostile.rss_kib(pid)))

        rounds = max(1, args.malformed // 400)
        measure(
            "cut short (4 framings)",
            lambda: hostile.malformed_flood(address, REPORT_PATH, connections=100, rounds=rounds),
        )
        measure("compressed flag / bad grpc-timeout", lambda: hostile.core_rejections(address, REPORT_PATH, calls=50))
        measure(
            "announcing 256 MiB",
            lambda: hostile.oversized(address, REPORT_PATH, requests=args.oversized, announced=256 << 20),
        )

        def flood() -> Counter[str]:
            counts = hostile.idle_flood(address, connections=args.idle, then=lambda: reports(address, "flood", 200))
            counts["stored"] = stored(address, "flood")
            return counts

        measure(f"{args.idle:,} idle connections (soft limit 1,024)", flood)
    print(f"{'fault':40} {'counts':70} {'RSS before':>11} {'RSS after':>10}")
    failed = False
    for name, counts, before, after in rows:
        text = ", ".join(f"{key} {value:,}" for key, value in counts.items())
        print(f"{name:40} {text:70} {before / 1024:9.0f} MiB {after / 1024:7.0f} MiB")
        failed |= counts["unanswered"] > 0 or counts["acknowledged"] != counts.get("stored", counts["acknowledged"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
