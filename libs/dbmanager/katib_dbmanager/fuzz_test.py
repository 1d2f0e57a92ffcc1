"""Fuzzing the DB manager over real gRPC: ≥ 10,000 generated requests, zero crashes, clear statuses.

Every answer must be OK or INVALID_ARGUMENT with a message (naming the field for structured
input); an accepted report must be stored whole; the server must still be healthy afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from katib_api.v1beta1 import api_pb2
from katib_dbmanager.server import DBManagerServer
from katib_dbmanager.storage import open_store

#: Examples per test; the four tests below send ≥ 10,000 requests in all.
EXAMPLES = int(os.environ.get("PYKATIB_FUZZ_EXAMPLES", "2600"))
METHODS = ("ReportObservationLog", "GetObservationLog", "DeleteObservationLog")
FIELD_PREFIXES = ("trial_name", "observation_log", "start_time", "end_time", "report key")
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[grpc.Channel]:
    path = tmp_path_factory.mktemp("fuzz") / "katib.db"
    with DBManagerServer(open_store(f"sqlite:///{path}?synchronous=off"), health_interval=0.5) as server:
        with grpc.insecure_channel(server.address) as chan:
            yield chan
        health = health_pb2_grpc.HealthStub(grpc.insecure_channel(server.address))
        status = health.Check(health_pb2.HealthCheckRequest(), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING  # still alive after the fuzzing


def call(
    channel: grpc.Channel, method: str, payload: bytes, metadata: tuple[tuple[str, str], ...] = ()
) -> bytes | None:
    """Send raw bytes; return the reply, or None after checking the error is a clear rejection."""
    try:
        reply: bytes = channel.unary_unary(f"/api.v1.beta1.DBManager/{method}")(payload, timeout=30, metadata=metadata)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, (exc.code(), exc.details())
        assert exc.details()
        return None
    return reply


@FUZZ
@given(method=st.sampled_from(METHODS), payload=st.binary(max_size=512))
def test_arbitrary_bytes_are_answered_cleanly(channel: grpc.Channel, method: str, payload: bytes) -> None:
    call(channel, method, payload)


timestamps = st.one_of(
    st.just(""),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S") + "+05:30"),
    st.text(max_size=40),
)
names = st.one_of(st.text(min_size=1, max_size=20), st.text(max_size=300))
values = st.one_of(st.floats().map(str), st.text(max_size=50), st.just("v" * 70_000))


@st.composite
def report_requests(draw: st.DrawFn) -> tuple[api_pb2.ReportObservationLogRequest, int]:
    request = api_pb2.ReportObservationLogRequest(trial_name=draw(st.one_of(st.just(""), names)))
    if draw(st.booleans()) or draw(st.booleans()):
        request.observation_log.SetInParent()
        for _ in range(draw(st.integers(0, 12))):
            log = request.observation_log.metric_logs.add(time_stamp=draw(timestamps))
            if draw(st.integers(0, 9)):
                log.metric.name = draw(names)
                log.metric.value = draw(values)
    kept = sum(1 for log in request.observation_log.metric_logs if log.time_stamp)
    return request, kept


@FUZZ
@given(generated=report_requests(), key=st.one_of(st.none(), st.text(max_size=70)))
def test_reports_are_stored_whole_or_rejected_with_the_field(
    channel: grpc.Channel, generated: tuple[api_pb2.ReportObservationLogRequest, int], key: str | None
) -> None:
    request, kept = generated
    trial = request.trial_name
    if trial:  # a fresh trial per example, so counting its rows is exact
        request.trial_name = trial = f"{trial[:200]}-{uuid.uuid4().hex}"
    metadata = (("pykatib-report-key", key),) if key is not None and key.isascii() and key.isprintable() else ()
    try:
        channel.unary_unary("/api.v1.beta1.DBManager/ReportObservationLog")(
            request.SerializeToString(), timeout=30, metadata=metadata
        )
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, (exc.code(), exc.details())
        assert exc.details().startswith(FIELD_PREFIXES), exc.details()
        stored = 0 if not trial else _count(channel, trial)
        assert stored == 0  # a rejected report leaves nothing behind
        return
    assert _count(channel, trial) == kept


@FUZZ
@given(trial=st.text(max_size=300), metric=st.text(max_size=300), start=timestamps, end=timestamps)
def test_reads_accept_or_name_the_bad_bound(
    channel: grpc.Channel, trial: str, metric: str, start: str, end: str
) -> None:
    request = api_pb2.GetObservationLogRequest(trial_name=trial, metric_name=metric, start_time=start, end_time=end)
    reply = call(channel, "GetObservationLog", request.SerializeToString())
    if reply is not None:
        assert api_pb2.GetObservationLogReply.FromString(reply).HasField("observation_log")


@FUZZ
@given(trial=st.text(max_size=400))
def test_deletes_never_fail(channel: grpc.Channel, trial: str) -> None:
    reply = call(
        channel, "DeleteObservationLog", api_pb2.DeleteObservationLogRequest(trial_name=trial).SerializeToString()
    )
    assert reply == b""


def _count(channel: grpc.Channel, trial: str) -> int:
    raw = channel.unary_unary("/api.v1.beta1.DBManager/GetObservationLog")(
        api_pb2.GetObservationLogRequest(trial_name=trial).SerializeToString(), timeout=30
    )
    return len(api_pb2.GetObservationLogReply.FromString(raw).observation_log.metric_logs)
