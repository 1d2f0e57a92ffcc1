"""Benchmark ``pykatib.report_metrics`` next to the official kubeflow-katib one, same server, same run.

    ./pants package services/dbmanager:katib-db-manager benchmarks/official_sdk:official-report-metrics
    ./pants run benchmarks:report-metrics-bench        # MariaDB must answer on 127.0.0.1:3306

For SQLite in memory (no fsync: the SDK and RPC cost alone), SQLite on disk and MariaDB (durable
commits), a packaged ``katib-db-manager`` runs as its own process; this process measures, with
1 metric per call:
1. synchronous ``report_metrics`` (every call acknowledged after COMMIT): p50/p99, over grpcio
   and over the pure-Python h2 transport;
2. buffered ``report_metrics(..., block=False)``: cost per call in the caller, then the time
   ``flush()`` needs to store the rest; the stored row count is checked;
3. the official SDK's ``report_metrics`` (new channel per call) in a separate process (its own
   resolve) against the same DB manager: p50/p99.
Targets: sync p50 ≤ 1 ms and p99 ≤ 5 ms, buffered ≤ 20 µs per call. The machine is shared and
noisy: compare the ratios printed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pykatib as katib
from pykatib import _reporting


@contextlib.contextmanager
def db_manager(pex: Path, backend: str, mysql_host: str) -> Iterator[str]:
    """A ``katib-db-manager`` process on a scratch database; yields its address."""
    with contextlib.ExitStack() as stack:
        if backend == "sqlite-memory":  # no fsync: what the SDK and the RPC cost without durability
            url = "sqlite:///:memory:"
        elif backend == "sqlite":
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="pykatib-bench-"))
            url = f"sqlite:///{folder}/katib.db"
        else:
            name = f"pykatib_bench_{uuid.uuid4().hex[:10]}"
            mariadb(mysql_host, f"CREATE DATABASE {name}")
            stack.callback(mariadb, mysql_host, f"DROP DATABASE IF EXISTS {name}")
            url = f"mysql://root@{mysql_host}:3306/{name}"
        proc = subprocess.Popen(
            [sys.executable, str(pex), "--listen-address", "127.0.0.1:0", "--db-url", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("PEX")},
        )
        stack.callback(proc.wait, 30)
        stack.callback(proc.terminate)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if " on 127.0.0.1:" not in line:
            raise SystemExit(f"katib-db-manager did not start: {line!r}")
        yield line.split(" on ")[1].split()[0]


def mariadb(host: str, statement: str) -> None:
    subprocess.run(["mariadb", "-h", host, "-u", "root", "-e", statement], check=True, timeout=60)


def percentiles(latencies_ms: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(latencies_ms, n=100)
    return {"p50_ms": cuts[49], "p99_ms": cuts[98], "mean_ms": statistics.fmean(latencies_ms)}


def ours_sync(address: str, calls: int, warmup: int, transport: str) -> dict[str, float]:
    os.environ["PYKATIB_TRANSPORT"] = transport
    _reporting._process = _reporting._Process()  # a fresh channel over this transport
    os.environ["KATIB_TRIAL_NAME"] = f"sync-{transport}-{uuid.uuid4().hex[:8]}"
    for step in range(warmup):
        katib.report_metrics({"loss": 1 / (step + 1)}, address)
    latencies = []
    for step in range(calls):
        start = time.perf_counter_ns()
        katib.report_metrics({"loss": 1 / (step + 1)}, address)
        latencies.append((time.perf_counter_ns() - start) / 1e6)
    return percentiles(latencies)


def ours_buffered(address: str, calls: int) -> dict[str, float]:
    os.environ["PYKATIB_TRANSPORT"] = "grpcio"
    _reporting._process = _reporting._Process()
    trial = os.environ["KATIB_TRIAL_NAME"] = f"buffered-{uuid.uuid4().hex[:8]}"
    katib.report_metrics({"loss": 0.0}, address, block=False)  # starts the sender thread
    katib.flush(60)
    start = time.perf_counter_ns()
    for step in range(calls):
        katib.report_metrics({"loss": step}, address, step=step, block=False)
    per_call_us = (time.perf_counter_ns() - start) / calls / 1e3
    flush_start = time.perf_counter()
    katib.flush(600)
    flush_s = time.perf_counter() - flush_start
    rows = len(_reporting.dbmanager_client(address).get(trial, "loss", timeout=120))
    if rows != calls + 1:
        raise SystemExit(f"buffered: {rows} rows stored, expected {calls + 1}")
    return {"per_call_us": per_call_us, "flush_s": flush_s}


def official(pex: Path, address: str, calls: int, warmup: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEX")}
    command = [sys.executable, str(pex), "--address", address, "--calls", str(calls), "--warmup", str(warmup)]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=1800, env=env)
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db-manager-pex", type=Path, default=Path("dist/katib-db-manager.pex"))
    parser.add_argument("--official-pex", type=Path, default=Path("dist/official-report-metrics.pex"))
    parser.add_argument("--backends", default="sqlite-memory,sqlite,mysql")
    parser.add_argument("--mysql-host", default="127.0.0.1")
    parser.add_argument("--sync-calls", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--buffered-calls", type=int, default=200_000)
    args = parser.parse_args()
    for pex in (args.db_manager_pex, args.official_pex):
        if not pex.exists():
            raise SystemExit(f"{pex} is missing: run the ./pants package line in this script's docstring")
    rows = []
    for backend in args.backends.split(","):
        with db_manager(args.db_manager_pex.resolve(), backend, args.mysql_host) as address:
            grpcio = ours_sync(address, args.sync_calls, args.warmup, "grpcio")
            h2 = ours_sync(address, args.sync_calls, args.warmup, "h2")
            buffered = ours_buffered(address, args.buffered_calls)
            theirs = official(args.official_pex.resolve(), address, args.sync_calls, args.warmup)
        rows.append((backend, grpcio, h2, buffered, theirs))
    print(
        f"report_metrics, 1 metric per call; sync: {args.sync_calls} calls after {args.warmup} warm-up;"
        f" buffered: {args.buffered_calls} calls"
    )
    print(f"{'backend':14} {'client':34} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for backend, grpcio, h2, buffered, theirs in rows:
        for label, figures in (
            ("pykatib sync (grpcio)", grpcio),
            ("pykatib sync (h2, pure Python)", h2),
            ("kubeflow-katib 0.19.0", theirs),
        ):
            print(
                f"{backend:14} {label:34} {figures['p50_ms']:8.3f} {figures['p99_ms']:8.3f} {figures['mean_ms']:8.3f}"
            )
        print(
            f"{backend:14} {'pykatib buffered (block=False)':34} {buffered['per_call_us']:8.2f} µs/call;"
            f" flush of the rest {buffered['flush_s']:.2f} s"
        )
        print(
            f"{backend:14} ratios official/pykatib-grpcio: p50 {theirs['p50_ms'] / grpcio['p50_ms']:.1f}x,"
            f" p99 {theirs['p99_ms'] / grpcio['p99_ms']:.1f}x; official p50 / buffered call"
            f" {theirs['p50_ms'] * 1e3 / buffered['per_call_us']:.0f}x"
        )


if __name__ == "__main__":
    main()
