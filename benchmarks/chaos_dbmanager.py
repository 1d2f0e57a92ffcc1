"""Chaos: 200 concurrent reporters while the DB manager is SIGKILLed every 10 s and MariaDB once.

    benchmarks/run_chaos_dbmanager.sh [--seconds 60 --processes 8 --threads 25]

Reporters are real ``pykatib.report_metrics`` calls (synchronous: each call returns only once
its point is committed, retrying with one idempotency key per report). A private MariaDB
instance is used, so restarting it disturbs nothing else on the machine. At the end every
acknowledged point must be stored exactly once: the script prints the missing and duplicated
counts and exits non-zero if either is not zero.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pymysql


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateMariaDB:
    """A throwaway mariadbd on a free loopback port; ``crash`` kills it, ``start`` recovers it."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "mariadb"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        (self.dir / "data").mkdir(parents=True)
        user = os.environ.get("USER") or "root"
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--user={user}",
                f"--datadir={self.dir / 'data'}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
        )
        self.start()
        with self.connect(None) as conn, conn.cursor() as cur:
            cur.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'")
            cur.execute("GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
            cur.execute("CREATE DATABASE katib")

    def start(self) -> None:
        log = open(self.dir / "mysqld.log", "ab")  # noqa: SIM115 - owned by the child process
        self.proc = subprocess.Popen(
            [
                "/usr/sbin/mariadbd",
                "--no-defaults",
                f"--user={os.environ.get('USER') or 'root'}",
                f"--datadir={self.dir / 'data'}",
                f"--socket={self.dir / 'sock'}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=128M",
                "--innodb-flush-log-at-trx-commit=1",
                "--max-connections=500",
            ],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"mariadbd did not start; see {self.dir / 'mysqld.log'}")

    def crash(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def connect(self, database: str | None) -> pymysql.Connection:
        if database is None:  # root over the socket, before the TCP account exists
            return pymysql.connect(unix_socket=str(self.dir / "sock"), user="root", autocommit=True)
        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", database=database, autocommit=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)


class DBManager:
    """The packaged katib-db-manager on a fixed port (clients reconnect to the same address)."""

    def __init__(self, pex: Path, db_port: int, root: Path) -> None:
        self.pex, self.port = pex, free_port()
        self.url = f"mysql://root@127.0.0.1:{db_port}/katib"
        self.log = root / "db-manager.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(self.pex),
                    "--listen-address",
                    self.address,
                    "--db-url",
                    self.url,
                    "--connect-timeout",
                    "120s",
                    "--log-level",
                    "WARNING",
                ],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def kill(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(60)


def reporter_process(index: int, threads: int, address: str, stop: multiprocessing.synchronize.Event, out: str) -> None:
    """One trial; each thread reports its own metric with increasing values until ``stop``."""
    os.environ["KATIB_TRIAL_NAME"] = f"chaos-trial-{index:03d}"
    os.environ["KATIB_DB_MANAGER_ADDRESS"] = address
    import pykatib

    acked: list[list[int]] = [[] for _ in range(threads)]
    failed = [0] * threads

    def run(thread: int) -> None:
        seq = 0
        while not stop.is_set():
            try:
                pykatib.report_metrics({f"m{thread:02d}": seq}, timeout=120)
            except RuntimeError:
                failed[thread] += 1  # not acknowledged: may or may not be stored
            else:
                acked[thread].append(seq)
            seq += 1

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    lines = [f"{t} {' '.join(map(str, seqs))}" for t, seqs in enumerate(acked)]
    Path(out).write_text("\n".join(lines) + f"\nfailed {sum(failed)}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chaos scenario and print what was lost or duplicated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-manager-pex", type=Path, default=Path("dist/katib-db-manager.pex"))
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--kill-every", type=float, default=10)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=25)
    args = parser.parse_args(argv)
    if shutil.which("mariadb-install-db") is None:
        raise SystemExit("mariadb-install-db is missing: apt-get install mariadb-server")
    root = Path(tempfile.mkdtemp(prefix="pykatib-chaos-"))
    try:
        db = PrivateMariaDB(root)
        manager = DBManager(args.db_manager_pex.resolve(), db.port, root)
        try:
            events, outs = _run(args, db, manager, root)
            acked, failed = _acknowledged(outs)
            with db.connect("katib") as conn, conn.cursor() as cur:
                cur.execute("SELECT trial_name, metric_name, value FROM observation_logs")
                stored: Counter[tuple[str, str, str]] = Counter(cur.fetchall())
        finally:
            manager.stop()
            db.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    missing = sum(1 for point in acked if stored[point] == 0)
    duplicated = sum(count - 1 for count in stored.values() if count > 1)
    extra = sum(1 for point in stored if point not in acked)
    for event in events:
        print(event)
    print(f"acknowledged points: {len(acked):,}   stored rows: {sum(stored.values()):,}")
    print(f"missing (acknowledged, not stored): {missing}")
    print(f"duplicated (stored more than once): {duplicated}")
    print(f"stored without an acknowledgement (calls that gave up): {extra}   failed calls: {failed}")
    return 0 if missing == 0 and duplicated == 0 and acked else 1


def _run(args: argparse.Namespace, db: PrivateMariaDB, manager: DBManager, root: Path) -> tuple[list[str], list[str]]:
    """Start the reporters, kill things on schedule, stop the reporters; return the event log."""
    manager.start()
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    outs = [str(root / f"acked-{i}.txt") for i in range(args.processes)]
    procs = [
        context.Process(target=reporter_process, args=(i, args.threads, manager.address, stop, outs[i]))
        for i in range(args.processes)
    ]
    print(
        f"{args.processes * args.threads} reporters → DB manager {manager.address} → private MariaDB :{db.port}"
        f" for {args.seconds:g} s"
    )
    events: list[str] = []
    try:
        for proc in procs:
            proc.start()
        started = time.monotonic()
        next_kill, db_crash_at = args.kill_every, args.seconds / 2 - args.kill_every / 2
        while (elapsed := time.monotonic() - started) < args.seconds:
            if elapsed >= next_kill:
                manager.kill()
                manager.start()
                events.append(f"{elapsed:5.1f}s  SIGKILL db-manager, restarted")
                next_kill += args.kill_every
            if db_crash_at is not None and elapsed >= db_crash_at:
                db.crash()
                db.start()
                db_crash_at = None
                events.append(f"{elapsed:5.1f}s  SIGKILL MariaDB, restarted (crash recovery)")
            time.sleep(0.05)
        stop.set()
        for proc in procs:
            proc.join(300)
    finally:
        stop.set()
        for proc in procs:
            if proc.is_alive():
                proc.kill()
    return events, outs


def _acknowledged(outs: list[str]) -> tuple[Counter[tuple[str, str, str]], int]:
    acked: Counter[tuple[str, str, str]] = Counter()
    failed = 0
    for index, out in enumerate(outs):
        for line in Path(out).read_text().splitlines():
            head, _, rest = line.partition(" ")
            if head == "failed":
                failed += int(rest)
                continue
            for seq in rest.split():
                acked[(f"chaos-trial-{index:03d}", f"m{int(head):02d}", seq)] += 1
    return acked, failed


if __name__ == "__main__":
    sys.exit(main())
