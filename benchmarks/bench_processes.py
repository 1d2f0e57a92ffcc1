"""Child processes the cluster benchmarks start: services as ``python`` children of this
interpreter, and a DB manager on a fresh MariaDB database (controller_bench, push_vs_pull_bench)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from katib_testcluster import polling

TICKS = os.sysconf("SC_CLK_TCK")
MYSQL = "mysql://root@127.0.0.1:3306"
_MARIADB = ["mariadb", "-h", "127.0.0.1", "-u", "root", "-e"]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class Process:
    """A child with this interpreter and sys.path (absolute), its output in ``<log_dir>/<name>.log``.

    ``stdout_pipe`` keeps stdout readable (servers print their address); stderr still goes to the log.
    """

    def __init__(self, name: str, argv: list[str], log_dir: Path, *, stdout_pipe: bool = False) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = self.log_path.open("wb")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(os.path.abspath(p) for p in sys.path if p)}
        self.popen = subprocess.Popen(
            [sys.executable, *argv],
            env=env,
            stdout=subprocess.PIPE if stdout_pipe else self.log,
            stderr=self.log if stdout_pipe else subprocess.STDOUT,
        )
        self.peak_rss = 0.0

    def sample(self) -> None:
        """Note the current RSS (``peak_rss`` keeps the largest seen)."""
        with contextlib.suppress(OSError):
            self.peak_rss = max(self.peak_rss, rss_mb(self.popen.pid))

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 30 s; close the pipe and the log."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self.log.close()


@contextlib.contextmanager
def db_manager(log_dir: Path, database: str) -> Iterator[tuple[Process, str]]:
    """A DB manager process on a fresh MariaDB ``database`` (dropped afterwards); yields it and its address."""
    subprocess.run([*_MARIADB, f"CREATE DATABASE {database}"], check=True)
    code = "import sys; from katib_dbmanager.main import main; sys.exit(main())"
    proc = Process(
        "db-manager", ["-c", code, "--listen-address", "127.0.0.1:0", "--db-url", f"{MYSQL}/{database}"], log_dir
    )
    try:

        def address() -> str | None:
            for line in proc.log_path.read_text(errors="replace").splitlines():
                if " on 127.0.0.1:" in line:
                    return line.split(" on ")[1].split()[0]
            return None

        yield proc, polling.wait_until(address, timeout=60, what="the DB manager to serve")
    finally:
        proc.stop()
        subprocess.run([*_MARIADB, f"DROP DATABASE IF EXISTS {database}"], check=False)
