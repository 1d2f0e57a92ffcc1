"""The packaged ``katib-db-manager`` PEX as operators run it: flags, env, errors, signals."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from katib_testsupport.processes import DBManagerProcess, run_db_manager

from katib_api.v1beta1 import api_pb2, api_pb2_grpc
from katib_dbmanager.storage import testing as storage_testing


@pytest.fixture()
def serve(tmp_path: Path) -> Iterator[Callable[..., DBManagerProcess]]:
    started: list[DBManagerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> DBManagerProcess:
        started.append(DBManagerProcess(*args, env=env, cwd=tmp_path))
        return started[-1]

    yield start
    for proc in started:
        proc.__exit__()


def push_and_read(address: str) -> list[str]:
    with grpc.insecure_channel(address) as channel:
        stub = api_pb2_grpc.DBManagerStub(channel)
        log = api_pb2.MetricLog(time_stamp="2024-01-01T00:00:00Z", metric=api_pb2.Metric(name="loss", value="0.5"))
        stub.ReportObservationLog(
            api_pb2.ReportObservationLogRequest(
                trial_name="t", observation_log=api_pb2.ObservationLog(metric_logs=[log])
            ),
            timeout=30,
        )
        reply = stub.GetObservationLog(api_pb2.GetObservationLogRequest(trial_name="t"), timeout=30)
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        return [m.metric.value for m in reply.observation_log.metric_logs]


Serve = Callable[..., DBManagerProcess]


def test_serves_sqlite_by_default_and_stops_on_sigterm(serve: Serve, tmp_path: Path) -> None:
    proc = serve()
    assert push_and_read(proc.address) == ["0.5"]
    assert (tmp_path / "katib.db").exists()
    assert proc.stop(signal.SIGTERM) == 0


def test_serves_katib_mysql_env(serve: Serve) -> None:
    with storage_testing.provision("mysql") as url:
        env = {
            "DB_NAME": "mysql",
            "DB_USER": url.user,
            "DB_PASSWORD": url.password,
            "KATIB_MYSQL_DB_HOST": url.host,
            "KATIB_MYSQL_DB_PORT": str(url.port),
            "KATIB_MYSQL_DB_DATABASE": url.database,
        }
        proc = serve(env=env)
        assert push_and_read(proc.address) == ["0.5"]
        assert proc.stop(signal.SIGINT) == 0
        # The packaged binary must use mysql-connector's C extension despite the system OpenSSL.
        assert "C extension does not load" not in proc.stderr


def test_serves_postgres_url(serve: Serve) -> None:
    with storage_testing.provision("postgresql") as url:
        proc = serve("--db-url", f"postgresql://{url.user}@{url.host}:{url.port}/{url.database}")
        assert push_and_read(proc.address) == ["0.5"]
        assert proc.stop() == 0


def test_bad_url_is_one_line_without_traceback() -> None:
    result = run_db_manager("--db-url", "mysql://root:hunter2@db:notaport/katib")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "katib-db-manager: error: --db-url: 'mysql://root:***@db:notaport/katib': the port is not a number"
    ]


def test_unreachable_database_gives_up_after_the_timeout_with_one_line() -> None:
    started = time.monotonic()
    result = run_db_manager("--db-url", "mysql://root@127.0.0.1:1/katib?connect_timeout=1", "--connect-timeout", "2s")
    assert result.returncode == 1
    assert time.monotonic() - started < 30
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "katib-db-manager: error: the database at mysql://root@127.0.0.1:1/katib did not answer within 2s"
    )
    assert "Traceback" not in result.stderr


def test_skip_initialization_needs_the_table(tmp_path: Path) -> None:
    result = run_db_manager("--db-url", f"sqlite:///{tmp_path}/empty.db", env={"SKIP_DB_INITIALIZATION": "true"})
    assert result.returncode == 1
    assert "no such table: observation_logs" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use_is_reported(serve: Serve, tmp_path: Path) -> None:
    address = serve().address
    result = run_db_manager("--db-url", f"sqlite:///{tmp_path}/other.db", "--listen-address", address)
    assert result.returncode == 1
    assert f"cannot listen on {address}" in result.stderr
    assert "Traceback" not in result.stderr


def test_workers_share_the_port_and_stop_together(serve: Serve) -> None:
    with storage_testing.provision("mysql") as url:
        proc = serve("--db-url", f"mysql://{url.user}@{url.host}:{url.port}/{url.database}", "--workers", "2")
        children = _children(proc.proc.pid)
        assert len(children) >= 2

        def push(worker: int) -> None:
            with grpc.insecure_channel(proc.address) as channel:  # one connection each: spread over workers
                stub = api_pb2_grpc.DBManagerStub(channel)
                for i in range(25):
                    log = api_pb2.MetricLog(
                        time_stamp="2024-01-01T00:00:00Z", metric=api_pb2.Metric(name="m", value=str(i))
                    )
                    stub.ReportObservationLog(
                        api_pb2.ReportObservationLogRequest(
                            trial_name=f"w{worker}", observation_log=api_pb2.ObservationLog(metric_logs=[log])
                        ),
                        timeout=30,
                    )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(push, range(8)))
        rows = storage_testing.admin_execute(url, "SELECT COUNT(*) FROM observation_logs")
        assert rows == [(200,)]
        assert proc.stop() == 0
        deadline = time.monotonic() + 10  # orphans would linger forever; exiting ones go at once
        while [pid for pid in children if Path(f"/proc/{pid}").exists()] and time.monotonic() < deadline:
            time.sleep(0.05)
        lingering = {
            pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in children if Path(f"/proc/{pid}").exists()
        }
        assert lingering == {}


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def test_the_open_file_soft_limit_is_raised_to_the_hard_limit(tmp_path: Path) -> None:
    with DBManagerProcess("--db-url", f"sqlite:///{tmp_path}/katib.db", open_files=(256, 4096)) as proc:
        limits = Path(f"/proc/{proc.proc.pid}/limits").read_text()
        (line,) = (row for row in limits.splitlines() if row.startswith("Max open files"))
        assert line.split()[3:5] == ["4096", "4096"], line
