"""Hostile input against the packaged DB manager process: every call answered, memory returned.

Each test ends in counts (sent, answered, refused, unanswered, acknowledged, stored) that it
asserts, and measures the process's resident memory (VmRSS) before and after. The other faults
of the standing suite live next to what they exercise: DB-manager and database SIGKILL loops in
benchmarks/chaos_dbmanager_test.py (private MariaDB), a SIGKILL
while a buffered reporter pushes in libs/sdk/pykatib/restart_test.py, the buffered endings in
libs/sdk/pykatib/endings_test.py, cross-namespace and cross-trial tokens in
libs/dbmanager/katib_dbmanager/auth_test.py. docs/dbmanager.md#guarantees sums them up.
"""

from __future__ import annotations

import resource
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from katib_testsupport import rawgrpc
from katib_testsupport.processes import DBManagerProcess

from katib_api.v1beta1 import api_pb2, api_pb2_grpc

REPORT_PATH = "/api.v1.beta1.DBManager/ReportObservationLog"
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
#: Growth of the process's RSS we tolerate across a flood (allocator slack, grpc's arenas). Before
#: malformed calls were answered, 2,000 of them held ~24 MiB for good; one 256 MiB request ~1 GiB.
RSS_SLACK_KIB = 48 << 10


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def report(stub: api_pb2_grpc.DBManagerStub, trial: str, value: int) -> None:
    log = api_pb2.MetricLog(time_stamp="2024-01-01T00:00:00Z", metric=api_pb2.Metric(name="m", value=str(value)))
    stub.ReportObservationLog(
        api_pb2.ReportObservationLogRequest(
            trial_name=trial, observation_log=api_pb2.ObservationLog(metric_logs=[log])
        ),
        timeout=30,
    )


def stored(stub: api_pb2_grpc.DBManagerStub, trial: str) -> Counter[str]:
    reply = stub.GetObservationLog(api_pb2.GetObservationLogRequest(trial_name=trial), timeout=30)
    return Counter(log.metric.value for log in reply.observation_log.metric_logs)


@pytest.fixture()
def db_manager(tmp_path: Path) -> Iterator[DBManagerProcess]:
    with DBManagerProcess("--db-url", f"sqlite:///{tmp_path}/katib.db", "--log-level", "WARNING") as proc:
        with grpc.insecure_channel(proc.address) as channel:  # warm up: the first calls allocate for good
            stub = api_pb2_grpc.DBManagerStub(channel)
            for value in range(200):
                report(stub, "warm-up", value)
        yield proc


def test_malformed_frames_are_answered_and_hold_no_memory(db_manager: DBManagerProcess) -> None:
    kinds = {
        "no message": [],
        "short length prefix": [b"\x00\x00\x00"],
        "body shorter than its prefix": [rawgrpc.frame(b"abcd", length=100)],
        "undecodable body": [rawgrpc.frame(b"\xff\xff\xff\xff")],
    }
    before = rss_kib(db_manager.proc.pid)
    counts: Counter[str] = Counter()
    for _ in range(4):  # 4 connections x 500 calls, all open at once on each
        connection = rawgrpc.RawConnection(db_manager.address)
        streams = [connection.open_call(REPORT_PATH, data) for _ in range(125) for data in kinds.values()]
        for answer in connection.answers(streams, wait=60).values():
            counts["sent"] += 1
            counts["invalid argument" if answer.status == INVALID_ARGUMENT else "other answer"] += answer.answered
            counts["unanswered"] += not answer.answered
        connection.close()
    with grpc.insecure_channel(db_manager.address) as channel:
        stub = api_pb2_grpc.DBManagerStub(channel)
        report(stub, "after", 1)
        counts["acknowledged after"] = 1
        counts["stored after"] = sum(stored(stub, "after").values())
    grown = rss_kib(db_manager.proc.pid) - before
    print(f"malformed frames: {dict(counts)}; RSS {before} KiB before, {grown:+} KiB after")
    assert counts == Counter({"sent": 2000, "invalid argument": 2000, "acknowledged after": 1, "stored after": 1})
    assert grown < RSS_SLACK_KIB


def test_oversized_requests_are_refused_before_they_are_buffered(db_manager: DBManagerProcess) -> None:
    """Eight requests announcing 256 MiB each (4 KB sent each): refused at the prefix, nothing kept."""
    before = rss_kib(db_manager.proc.pid)
    connection = rawgrpc.RawConnection(db_manager.address)
    head = rawgrpc.frame(b"\x0a" * 4000, length=256 << 20)
    streams = [connection.open_call(REPORT_PATH, [head], end_stream=False) for _ in range(8)]
    answers = connection.answers(streams, wait=60)
    connection.close()
    refused = sum(answer.status == RESOURCE_EXHAUSTED for answer in answers.values())
    grown = rss_kib(db_manager.proc.pid) - before
    print(f"oversized: 8 sent, {refused} refused; RSS {before} KiB before, {grown:+} KiB after")
    assert refused == 8, answers
    assert grown < RSS_SLACK_KIB


def test_an_idle_connection_flood_leaves_room_for_clients(tmp_path: Path) -> None:
    """3,000 idle connections against a soft limit of 1,024 open files (raised at start-up)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    flood = 3000
    assert hard >= 2 * flood + 256, f"the test needs {2 * flood + 256} open files; the hard limit is {hard}"
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, flood + 256), hard))
    idle: list[socket.socket] = []
    with DBManagerProcess(
        "--db-url", f"sqlite:///{tmp_path}/katib.db", "--log-level", "WARNING", open_files=(1024, hard)
    ) as proc:
        host, _, port = proc.address.rpartition(":")
        try:
            for _ in range(flood):
                idle.append(socket.create_connection((host, int(port)), timeout=10))
            acknowledged = 0
            with grpc.insecure_channel(proc.address) as channel:
                stub = api_pb2_grpc.DBManagerStub(channel)
                for value in range(20):
                    report(stub, "through-the-flood", value)
                    acknowledged += 1
                kept = stored(stub, "through-the-flood")
            print(f"idle flood: {len(idle)} idle connections; {acknowledged} acknowledged, {sum(kept.values())} stored")
            assert (len(idle), acknowledged, sum(kept.values()), len(kept)) == (flood, 20, 20, 20)
        finally:
            for sock in idle:
                sock.close()
