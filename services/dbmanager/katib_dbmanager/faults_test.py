"""Hostile input against the packaged DB manager process: every call answered, memory returned.

Each test ends in counts (sent, answered, refused, unanswered, acknowledged, stored) that it
asserts, and measures the process's resident memory (VmRSS) before and after. The other faults
of the standing suite live next to what they exercise: DB-manager and database SIGKILL loops in
benchmarks/chaos_dbmanager_test.py (private MariaDB), a SIGKILL
while a buffered reporter pushes in libs/sdk/pykatib/restart_test.py, the buffered endings in
libs/sdk/pykatib/endings_test.py, cross-namespace and cross-trial tokens in
libs/dbmanager/katib_dbmanager/auth_test.py. docs/dbmanager.md#guarantees-as-measured sums them up.
"""

from __future__ import annotations

import resource
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from katib_testsupport import hostile
from katib_testsupport.hostile import rss_kib
from katib_testsupport.processes import DBManagerProcess

from katib_api.v1beta1 import api_pb2, api_pb2_grpc

REPORT_PATH = "/api.v1.beta1.DBManager/ReportObservationLog"
#: Growth of the process's RSS we tolerate across a flood (allocator slack, grpc's arenas). Before
#: malformed calls were answered, 2,000 of them held ~24 MiB for good; one 256 MiB request ~1 GiB.
RSS_SLACK_KIB = 48 << 10


def report(stub: api_pb2_grpc.DBManagerStub, trial: str, value: int) -> None:
    log = api_pb2.MetricLog(time_stamp="2024-01-01T00:00:00Z", metric=api_pb2.Metric(name="m", value=str(value)))
    stub.ReportObservationLog(
        api_pb2.ReportObservationLogRequest(
            trial_name=trial, observation_log=api_pb2.ObservationLog(metric_logs=[log])
        ),
        timeout=30,
    )


def stored(address: str, trial: str) -> Counter[str]:
    with grpc.insecure_channel(address) as channel:
        reply = api_pb2_grpc.DBManagerStub(channel).GetObservationLog(
            api_pb2.GetObservationLogRequest(trial_name=trial), timeout=30
        )
    return Counter(log.metric.value for log in reply.observation_log.metric_logs)


def reports(address: str, trial: str, count: int) -> int:
    """Report ``count`` points on a fresh channel; how many were acknowledged."""
    with grpc.insecure_channel(address) as channel:
        stub = api_pb2_grpc.DBManagerStub(channel)
        for value in range(count):
            report(stub, trial, value)
    return count


@pytest.fixture()
def db_manager(tmp_path: Path) -> Iterator[DBManagerProcess]:
    with DBManagerProcess("--db-url", f"sqlite:///{tmp_path}/katib.db", "--log-level", "WARNING") as proc:
        reports(proc.address, "warm-up", 200)  # the first calls allocate for good
        yield proc


def test_malformed_frames_are_answered_and_hold_no_memory(db_manager: DBManagerProcess) -> None:
    before = rss_kib(db_manager.proc.pid)
    counts = hostile.malformed_flood(db_manager.address, REPORT_PATH, connections=4, rounds=125)
    counts["acknowledged after"] = reports(db_manager.address, "after", 1)
    counts["stored after"] = sum(stored(db_manager.address, "after").values())
    grown = rss_kib(db_manager.proc.pid) - before
    print(f"malformed frames: {dict(counts)}; RSS {before} KiB before, {grown:+} KiB after")
    assert counts == Counter({"sent": 2000, "invalid argument": 2000, "acknowledged after": 1, "stored after": 1})
    assert grown < RSS_SLACK_KIB


def test_errors_grpcio_answers_itself_are_internal(db_manager: DBManagerProcess) -> None:
    counts = hostile.core_rejections(db_manager.address, REPORT_PATH, calls=5)
    assert counts == Counter({"sent": 10, "internal": 10})


def test_oversized_requests_are_refused_before_they_are_buffered(db_manager: DBManagerProcess) -> None:
    """Eight requests announcing 256 MiB each (4 KB sent each): refused at the prefix, nothing kept."""
    before = rss_kib(db_manager.proc.pid)
    counts = hostile.oversized(db_manager.address, REPORT_PATH, requests=8, announced=256 << 20)
    grown = rss_kib(db_manager.proc.pid) - before
    print(f"oversized: {dict(counts)}; RSS {before} KiB before, {grown:+} KiB after")
    assert counts == Counter({"sent": 8, "refused": 8})
    assert grown < RSS_SLACK_KIB


def test_an_idle_connection_flood_leaves_room_for_clients(tmp_path: Path) -> None:
    """3,000 idle connections against a soft limit of 1,024 open files (raised at start-up)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    flood = 3000
    assert hard >= flood + 256, f"the test needs {flood + 256} open files; the hard limit is {hard}"
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, flood + 256), hard))
    with DBManagerProcess(
        "--db-url", f"sqlite:///{tmp_path}/katib.db", "--log-level", "WARNING", open_files=(1024, hard)
    ) as proc:
        counts = hostile.idle_flood(proc.address, connections=flood, then=lambda: reports(proc.address, "t", 20))
        counts["stored"] = len(stored(proc.address, "t"))
    print(f"idle flood: {dict(counts)}")
    assert counts == Counter({"idle connections": flood, "acknowledged": 20, "stored": 20})
