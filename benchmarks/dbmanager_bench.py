"""Benchmark the DB manager against the real MariaDB of this machine, with baselines from the same run.

    benchmarks/run_dbmanager_bench.sh            # builds the pexes, then runs this

Measures, in one run (these machines are noisy: compare ratios, not absolute numbers):
1. baselines: raw MariaDB inserts (1 row per autocommit INSERT; 1,000-row INSERTs) and Optuna
   RDBStorage ``trial.report`` on the same database (PyMySQL, as in anchors.md);
2. durable small reports: ReportObservationLog with 2 metrics, ~100 concurrent clients (h2load,
   100 connections), acked after COMMIT — RPC/s, p50/p99; the stored row count is checked;
3. batched ingest: 50 and 500 metrics per RPC — rows/s;
4. GetObservationLog for one trial's 200 points in a table of 1,000,000 rows — p50/p95/p99
   through gRPC, next to the same SQL on our indexed table and on Katib's index-less one.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pymysql

from katib_api.v1beta1 import api_pb2, api_pb2_grpc

KATIB_DDL = (
    "CREATE TABLE observation_logs (trial_name VARCHAR(255) NOT NULL, id INT AUTO_INCREMENT PRIMARY KEY,"
    " time DATETIME(6), metric_name VARCHAR(255) NOT NULL, value TEXT NOT NULL)"
)
INDEX_DDL = "CREATE INDEX ix_observation_logs_trial_metric_time ON observation_logs (trial_name, metric_name, time)"
REPORT_PATH = "/api.v1.beta1.DBManager/ReportObservationLog"


@dataclass
class Result:
    label: str
    value: float
    unit: str
    note: str = ""


# -- databases -------------------------------------------------------------------------------


class MariaDB:
    """Admin access to the server under test; creates and drops scratch databases."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 3306
        self.user, self.password = parts.username or "root", parts.password or ""
        self.run_id = uuid.uuid4().hex[:8]
        self.databases: list[str] = []

    def connect(self, database: str | None = None, *, autocommit: bool = True) -> pymysql.Connection:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            autocommit=autocommit,
            charset="utf8mb4",
        )

    def create(self, suffix: str) -> str:
        name = f"pykatib_bench_{self.run_id}_{suffix}"
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
        self.databases.append(name)
        return name

    def url(self, database: str) -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"mysql://{auth}@{self.host}:{self.port}/{database}"

    def count(self, database: str) -> int:
        with self.connect(database) as conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM observation_logs")
            return int(cur.fetchone()[0])

    def drop_all(self) -> None:
        with self.connect() as conn, conn.cursor() as cur:
            for name in self.databases:
                cur.execute(f"DROP DATABASE IF EXISTS {name}")


def timed_loop(seconds: float, step: Callable[[int], int]) -> float:
    """Call ``step(i)`` until ``seconds`` pass; return units per second (step returns units done)."""
    done, i = 0, 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        done += step(i)
        i += 1
    return done / elapsed


def raw_insert_baselines(db: MariaDB, seconds: float) -> list[Result]:
    name = db.create("raw")
    with db.connect(name) as conn, conn.cursor() as cur:
        cur.execute(KATIB_DDL)
        cur.execute(INDEX_DDL)
    sql = "INSERT INTO observation_logs (trial_name, time, metric_name, value) VALUES (%s, %s, %s, %s)"
    now = "2024-07-29 15:09:08.000001"
    with db.connect(name, autocommit=True) as conn, conn.cursor() as cur:

        def single(i: int) -> int:
            cur.execute(sql, (f"trial-{i % 100}", now, "loss", "0.123"))
            return 1

        single_rate = timed_loop(seconds, single)
    with db.connect(name, autocommit=False) as conn, conn.cursor() as cur:
        rows = [(f"trial-{i % 100}", now, "loss", "0.123") for i in range(1000)]

        def batch(_: int) -> int:
            cur.executemany(sql, rows)  # PyMySQL turns this into one multi-row INSERT
            conn.commit()
            return len(rows)

        batch_rate = timed_loop(seconds, batch)
    return [
        Result("raw MariaDB, 1 row per autocommit INSERT (1 connection)", single_rate, "rows/s"),
        Result("raw MariaDB, 1,000-row INSERT per commit (1 connection)", batch_rate, "rows/s"),
    ]


def optuna_baseline(db: MariaDB, seconds: float) -> Result:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = db.create("optuna")
    auth = db.user + (f":{db.password}" if db.password else "")
    storage = optuna.storages.RDBStorage(f"mysql+pymysql://{auth}@{db.host}:{db.port}/{name}")
    trial = optuna.create_study(storage=storage).ask()

    def report(step: int) -> int:
        trial.report(1.0 / (step + 1), step)
        return 1

    return Result("Optuna RDBStorage trial.report (same MariaDB)", timed_loop(seconds, report), "reports/s")


# -- the DB manager under load ---------------------------------------------------------------


@contextmanager
def db_manager(pex: Path, url: str, workers: int) -> Iterator[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(pex),
            "--listen-address",
            "127.0.0.1:0",
            "--db-url",
            url,
            "--workers",
            str(workers),
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if " on 127.0.0.1:" not in line:
        proc.kill()
        raise SystemExit(f"katib-db-manager did not start: {line}{proc.communicate()[1]}")
    try:
        yield line.split(" on ")[1].split()[0]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
        if "C extension does not load" in err:
            print("  note: the DB manager ran without mysql-connector's C extension", file=sys.stderr)


def grpc_frame(message: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(message)) + message


def report_body(trial: str, metrics: int) -> bytes:
    logs = [
        api_pb2.MetricLog(
            time_stamp="2024-07-29T15:09:08.123456Z", metric=api_pb2.Metric(name=f"metric_{i}", value=f"0.{i:04d}")
        )
        for i in range(metrics)
    ]
    request = api_pb2.ReportObservationLogRequest(
        trial_name=trial, observation_log=api_pb2.ObservationLog(metric_logs=logs)
    )
    return grpc_frame(request.SerializeToString())


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    completed: int


def h2load(address: str, body: bytes, *, clients: int, streams: int, seconds: float, warmup: float) -> Load:
    with tempfile.TemporaryDirectory() as tmp:
        body_file, log_file = Path(tmp) / "body", Path(tmp) / "log"
        body_file.write_bytes(body)
        out = subprocess.run(
            [
                "h2load",
                "-D",
                str(seconds),
                "--warm-up-time",
                str(warmup),
                "-c",
                str(clients),
                "-m",
                str(streams),
                "-t",
                "1",
                "--header=content-type: application/grpc",
                "--header=te: trailers",
                "-d",
                str(body_file),
                f"--log-file={log_file}",
                f"http://{address}{REPORT_PATH}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        records = [line.split("\t") for line in log_file.read_text().splitlines() if line.strip()]
    if any(status != "200" for _, status, _ in records):
        raise SystemExit(f"h2load saw non-200 answers:\n{out}")
    # The log holds only measured requests (after warm-up); latency is the third column (µs).
    starts = [int(start) for start, _, _ in records]
    latencies = sorted(int(micros) / 1000 for _, _, micros in records)
    span = (max(starts) - min(starts)) / 1e6 or seconds
    return Load(len(records) / span, percentile(latencies, 50), percentile(latencies, 99), len(records))


def percentile(sorted_values: list[float], pct: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def small_reports(db: MariaDB, pex: Path, workers: int, seconds: float) -> list[Result]:
    name = db.create("small")
    with db_manager(pex, db.url(name), workers) as address:
        load = h2load(address, report_body("bench-trial-0001", 2), clients=100, streams=1, seconds=seconds, warmup=2)
        time.sleep(1)
    rows = db.count(name)
    return [
        Result(
            f"katib-db-manager, 2-metric reports, 100 clients ({workers} workers)",
            load.rps,
            "RPC/s",
            f"p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms; {rows:,} rows stored ({rows / 2:,.0f} RPCs)",
        ),
        Result("  p50 latency", load.p50_ms, "ms"),
        Result("  p99 latency", load.p99_ms, "ms"),
    ]


def batched_ingest(db: MariaDB, pex: Path, workers: int, seconds: float) -> list[Result]:
    results = []
    for metrics in (50, 500):
        name = db.create(f"batch{metrics}")
        with db_manager(pex, db.url(name), workers) as address:
            load = h2load(
                address, report_body("bench-trial-0001", metrics), clients=10, streams=10, seconds=seconds, warmup=2
            )
            time.sleep(1)
        rows = db.count(name)
        results.append(
            Result(
                f"katib-db-manager, {metrics} metrics per RPC, 100 in flight ({workers} workers)",
                load.rps * metrics,
                "rows/s",
                f"{load.rps:,.0f} RPC/s, p99 {load.p99_ms:.1f} ms; {rows:,} rows stored",
            )
        )
    return results


# -- reads -------------------------------------------------------------------------------------


def populate(db: MariaDB, database: str, total_rows: int, points: int) -> int:
    trials = total_rows // (2 * points)
    sql = "INSERT INTO observation_logs (trial_name, time, metric_name, value) VALUES (%s, %s, %s, %s)"
    with db.connect(database, autocommit=False) as conn, conn.cursor() as cur:
        chunk: list[tuple[str, str, str, str]] = []
        for t in range(trials):
            for step in range(points):
                stamp = f"2024-07-29 15:{step // 60 % 60:02d}:{step % 60:02d}.{t:06d}"
                chunk.append((f"exp-trial-{t:05d}", stamp, "loss", f"{1 / (step + 1):.6f}"))
                chunk.append((f"exp-trial-{t:05d}", stamp, "accuracy", f"{step / points:.6f}"))
            if len(chunk) >= 4000:
                cur.executemany(sql, chunk)
                conn.commit()
                chunk = []
        if chunk:
            cur.executemany(sql, chunk)
            conn.commit()
    return trials


def reads(db: MariaDB, pex: Path, total_rows: int, queries: int) -> list[Result]:
    ours = db.create("read")
    with db_manager(pex, db.url(ours), 1):
        pass  # creates our schema (table + index + keys table)
    trials = populate(db, ours, total_rows, 200)
    katib = db.create("read_katib")
    with db.connect(katib) as conn, conn.cursor() as cur:
        cur.execute(KATIB_DDL)
        cur.execute(f"INSERT INTO observation_logs SELECT * FROM {ours}.observation_logs")
    rows = db.count(ours)
    rng = random.Random(7)
    with db_manager(pex, db.url(ours), 1) as address, grpc.insecure_channel(address) as channel:
        stub = api_pb2_grpc.DBManagerStub(channel)
        grpc_ms = []
        for i in range(queries + 20):
            request = api_pb2.GetObservationLogRequest(
                trial_name=f"exp-trial-{rng.randrange(trials):05d}", metric_name="loss"
            )
            start = time.perf_counter()
            reply = stub.GetObservationLog(request, timeout=30)
            elapsed = (time.perf_counter() - start) * 1000
            assert len(reply.observation_log.metric_logs) == 200
            if i >= 20:  # warm-up: connections, caches
                grpc_ms.append(elapsed)
    sql = (
        "SELECT time, metric_name, value FROM observation_logs WHERE trial_name = %s AND metric_name = %s"
        " ORDER BY time, id"
    )

    def raw(database: str, count: int) -> list[float]:
        timings = []
        with db.connect(database) as conn, conn.cursor() as cur:
            for _ in range(count + 3):
                start = time.perf_counter()
                cur.execute(sql, (f"exp-trial-{rng.randrange(trials):05d}", "loss"))
                assert len(cur.fetchall()) == 200
                timings.append((time.perf_counter() - start) * 1000)
        return sorted(timings[3:])

    indexed, unindexed = raw(ours, queries), raw(katib, max(20, queries // 25))
    grpc_ms.sort()
    return [
        Result(
            f"GetObservationLog via gRPC, 200 of {rows:,} rows",
            percentile(grpc_ms, 95),
            "ms p95",
            f"p50 {percentile(grpc_ms, 50):.2f}, p99 {percentile(grpc_ms, 99):.2f} ms ({queries} queries)",
        ),
        Result(
            "  same SQL, our indexed table (PyMySQL)",
            percentile(indexed, 95),
            "ms p95",
            f"p50 {percentile(indexed, 50):.2f} ms",
        ),
        Result(
            "  same SQL, Katib's index-less table (PyMySQL)",
            percentile(unindexed, 95),
            "ms p95",
            f"p50 {percentile(unindexed, 50):.2f} ms ({len(unindexed)} queries)",
        ),
    ]


# -- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run every measurement and print a table with ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mysql-url", default="mysql://root@127.0.0.1:3306")
    parser.add_argument("--db-manager-pex", type=Path, default=Path("dist/katib-db-manager.pex"))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="short smoke run (3 s loads, 40k rows)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rows, args.queries = 3, 40_000, 100
    if shutil.which("h2load") is None:
        raise SystemExit("h2load is missing: apt-get install nghttp2-client (run_dbmanager_bench.sh does)")
    pex = args.db_manager_pex.resolve()
    db = MariaDB(args.mysql_url)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; MariaDB at {db.host}:{db.port}")
    try:
        baseline = raw_insert_baselines(db, min(args.seconds, 8))
        optuna = optuna_baseline(db, min(args.seconds, 8))
        small = small_reports(db, pex, args.workers, args.seconds)
        batched = batched_ingest(db, pex, args.workers, args.seconds)
        read = reads(db, pex, args.rows, args.queries)
    finally:
        db.drop_all()
    single, batch = baseline
    rows = [*baseline, optuna, *small, *batched, *read]
    width = max(len(r.label) for r in rows)
    print()
    for r in rows:
        print(f"{r.label:<{width}}  {r.value:>12,.2f} {r.unit:<10} {r.note}")
    print()
    rps, p99 = small[0].value, small[2].value
    print("ratios and targets (issue 2):")
    print(
        f"  small reports: {rps:,.0f} RPC/s = {rps / single.value:.1f}x raw 1-row commits,"
        f" {rps / optuna.value:.1f}x Optuna trial.report; target >= 3,000 RPC/s: {'met' if rps >= 3000 else 'MISSED'}"
    )
    print(f"  small reports p99: {p99:.1f} ms; target <= 50 ms: {'met' if p99 <= 50 else 'MISSED'}")
    best = max(r.value for r in batched)
    print(
        f"  batched ingest: {best:,.0f} rows/s = {best / batch.value:.2f}x raw 1,000-row INSERTs;"
        f" target >= 60,000 rows/s: {'met' if best >= 60000 else 'MISSED'}"
    )
    p95, katib = read[0].value, read[2].value
    print(
        f"  read p95: {p95:.2f} ms via gRPC vs {katib:.1f} ms raw SQL on Katib's schema ({katib / p95:.0f}x);"
        f" target <= 10 ms: {'met' if p95 <= 10 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
