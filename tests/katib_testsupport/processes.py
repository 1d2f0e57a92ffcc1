"""Packaged services (``katib-db-manager``, ``katib-suggestion``) as real processes, as operators see them.

Standard library only, so tests in any resolve (ours, or the official SDK's) can use it.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

#: Where ``runtime_package_dependencies`` puts the packaged services in a test sandbox.
DB_MANAGER_PEX = Path("katib-db-manager.pex").absolute()
SUGGESTION_PEX = Path("katib-suggestion.pex").absolute()


class ServiceProcess:
    """A packaged gRPC service started on 127.0.0.1 and a free port; ``address`` once it serves
    (its first stdout line says ``… on 127.0.0.1:PORT``)."""

    def __init__(
        self,
        pex: Path,
        *args: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        open_files: tuple[int, int] | None = None,
    ) -> None:
        def limit() -> None:  # in the child, before exec: its (soft, hard) open-file limit
            if open_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, open_files)

        self.proc = subprocess.Popen(
            [sys.executable, str(pex), "--listen-address", "127.0.0.1:0", *args],
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            preexec_fn=limit if open_files is not None else None,  # noqa: PLW1509 - no threads in the child
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if " on 127.0.0.1:" not in line:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=30)
            raise RuntimeError(f"{pex.stem} did not start: {line}{err}")
        self.address = line.split(" on ")[1].split()[0]
        self.stderr = ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the process and return its exit status; its stderr is in ``self.stderr`` afterwards."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        _, self.stderr = self.proc.communicate(timeout=timeout)
        return self.proc.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        if self.proc.poll() is None:
            self.stop(signal.SIGKILL)


class DBManagerProcess(ServiceProcess):
    """``katib-db-manager`` (``pex``: another build of it)."""

    def __init__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        open_files: tuple[int, int] | None = None,
        pex: Path = DB_MANAGER_PEX,
    ) -> None:
        super().__init__(pex, *args, env=env, cwd=cwd, open_files=open_files)


class SuggestionProcess(ServiceProcess):
    """``katib-suggestion``, as Katib's controllers see it."""

    def __init__(self, *args: str, env: Mapping[str, str] | None = None, pex: Path = SUGGESTION_PEX) -> None:
        super().__init__(pex, *args, env=env)


def run_service(
    pex: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a packaged service to completion (for error paths) and capture its output."""
    return subprocess.run(
        [sys.executable, str(pex), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_db_manager(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return run_service(DB_MANAGER_PEX, *args, env=env, timeout=timeout)


def run_suggestion(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return run_service(SUGGESTION_PEX, *args, env=env, timeout=timeout)


def mariadb_database(name: str, *, drop: bool = False, port: int = 3306) -> None:
    """Create (or drop) a database on the local MariaDB with its command-line client."""
    statement = f"DROP DATABASE IF EXISTS {name}" if drop else f"CREATE DATABASE {name}"
    subprocess.run(
        ["mariadb", "-h", "127.0.0.1", "-P", str(port), "-u", "root", "-e", statement], check=True, timeout=30
    )


__all__: Sequence[str] = [
    "DB_MANAGER_PEX",
    "SUGGESTION_PEX",
    "DBManagerProcess",
    "ServiceProcess",
    "SuggestionProcess",
    "mariadb_database",
    "run_db_manager",
    "run_service",
    "run_suggestion",
]
