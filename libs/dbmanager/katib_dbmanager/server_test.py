"""The DB manager over real gRPC on loopback, on SQLite and on the real MariaDB/PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from katib_testsupport import rawgrpc

from katib_api.v1beta1 import api_pb2, api_pb2_grpc
from katib_dbmanager.server import DBManagerServer
from katib_dbmanager.servicer import REPORT_KEY_HEADER
from katib_dbmanager.storage import open_store
from katib_dbmanager.storage import testing as storage_testing

# Katib's wire test vectors (docs/katib-compat.md#wire-format), produced by the official SDK's generated module.
REPORT_HEX = (
    "0a1874756e652d6578706572696d656e742d78376b327039717a12280a260a14323032342d30372d32395431353a30393a30385a"
    "120e0a06726573756c741204302e3939"
)
GET_HEX = "0a1874756e652d6578706572696d656e742d78376b327039717a1206726573756c74"
EMPTY_REPORT_HEX = "0a01741200"


class Client:
    """A stub plus the helpers the tests share."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = api_pb2_grpc.DBManagerStub(self.channel)
        self.address = address

    def report(self, trial: str, *logs: tuple[str, str, str], key: str | None = None) -> None:
        request = api_pb2.ReportObservationLogRequest(
            trial_name=trial,
            observation_log=api_pb2.ObservationLog(
                metric_logs=[
                    api_pb2.MetricLog(time_stamp=t, metric=api_pb2.Metric(name=n, value=v)) for t, n, v in logs
                ]
            ),
        )
        metadata = [(REPORT_KEY_HEADER, key)] if key else None
        self.stub.ReportObservationLog(request, timeout=30, metadata=metadata)

    def get(self, trial: str, metric: str = "", start: str = "", end: str = "") -> list[tuple[str, str, str]]:
        reply = self.stub.GetObservationLog(
            api_pb2.GetObservationLogRequest(trial_name=trial, metric_name=metric, start_time=start, end_time=end),
            timeout=30,
        )
        return [(log.time_stamp, log.metric.name, log.metric.value) for log in reply.observation_log.metric_logs]


@pytest.fixture(params=["sqlite", "mysql", "postgresql"])
def client(request: pytest.FixtureRequest) -> Iterator[Client]:
    with storage_testing.supply(request.param) as made, DBManagerServer(made.open(), health_interval=0.2) as server:
        made.stores.clear()  # the server owns and closes the store
        client = Client(server.address)
        yield client
        client.channel.close()


def test_wire_vectors_round_trip() -> None:
    report = api_pb2.ReportObservationLogRequest.FromString(bytes.fromhex(REPORT_HEX))
    assert report.trial_name == "tune-experiment-x7k2p9qz"
    assert report.observation_log.metric_logs[0].metric.value == "0.99"
    assert report.SerializeToString().hex() == REPORT_HEX
    get = api_pb2.GetObservationLogRequest.FromString(bytes.fromhex(GET_HEX))
    assert (get.trial_name, get.metric_name) == ("tune-experiment-x7k2p9qz", "result")
    assert get.SerializeToString().hex() == GET_HEX
    empty = api_pb2.GetObservationLogReply()
    empty.observation_log.SetInParent()
    assert empty.SerializeToString().hex() == "0a00"
    assert api_pb2.ReportObservationLogRequest.FromString(bytes.fromhex(EMPTY_REPORT_HEX)).trial_name == "t"


def test_sdk_wire_report_is_stored_and_read_back(client: Client) -> None:
    request = api_pb2.ReportObservationLogRequest.FromString(bytes.fromhex(REPORT_HEX))
    client.stub.ReportObservationLog(request, timeout=30)
    raw = client.channel.unary_unary("/api.v1.beta1.DBManager/GetObservationLog")(bytes.fromhex(GET_HEX), timeout=30)
    reply = api_pb2.GetObservationLogReply.FromString(raw)
    assert [(m.time_stamp, m.metric.name, m.metric.value) for m in reply.observation_log.metric_logs] == [
        ("2024-07-29T15:09:08Z", "result", "0.99")
    ]


def test_calls_without_a_deadline(client: Client) -> None:
    request = api_pb2.ReportObservationLogRequest.FromString(bytes.fromhex(REPORT_HEX))
    client.stub.ReportObservationLog(request)  # no timeout: the server must not choke on "infinity"
    assert len(client.get("tune-experiment-x7k2p9qz")) == 1


def test_empty_report_is_a_no_op(client: Client) -> None:
    raw = client.channel.unary_unary("/api.v1.beta1.DBManager/ReportObservationLog")(
        bytes.fromhex(EMPTY_REPORT_HEX), timeout=30
    )
    assert raw == b""
    assert client.get("t") == []


def test_get_of_an_unknown_trial_has_an_empty_log(client: Client) -> None:
    raw = client.channel.unary_unary("/api.v1.beta1.DBManager/GetObservationLog")(
        api_pb2.GetObservationLogRequest(trial_name="nobody").SerializeToString(), timeout=30
    )
    assert raw.hex() == "0a00"


def test_nil_and_empty_requests_are_answered_cleanly(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.stub.ReportObservationLog(api_pb2.ReportObservationLogRequest(trial_name="t"), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "observation_log" in caught.value.details()
    assert client.stub.GetObservationLog(api_pb2.GetObservationLogRequest(), timeout=30).HasField("observation_log")
    client.stub.DeleteObservationLog(api_pb2.DeleteObservationLogRequest(), timeout=30)


def test_unset_metric_is_invalid_not_a_crash(client: Client) -> None:
    request = api_pb2.ReportObservationLogRequest(
        trial_name="t",
        observation_log=api_pb2.ObservationLog(metric_logs=[api_pb2.MetricLog(time_stamp="2024-01-01T00:00:00Z")]),
    )
    with pytest.raises(grpc.RpcError) as caught:
        client.stub.ReportObservationLog(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "observation_log.metric_logs[0].metric" in caught.value.details()
    client.report("t", ("2024-01-01T00:00:00Z", "loss", "1"))  # the server is still there
    assert len(client.get("t")) == 1


def test_one_bad_timestamp_rejects_the_whole_report(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.report("t", ("2024-01-01T00:00:00Z", "loss", "1"), ("2024-01-01 00:00:01", "loss", "2"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "observation_log.metric_logs[1].time_stamp" in caught.value.details()
    assert "2024-01-01 00:00:01" in caught.value.details()
    assert client.get("t") == []


def test_entries_without_timestamps_are_skipped(client: Client) -> None:
    client.report("t", ("", "loss", "skipped"), ("2024-01-01T00:00:00Z", "loss", "kept"))
    assert client.get("t") == [("2024-01-01T00:00:00Z", "loss", "kept")]


def test_timestamps_come_back_as_utc_rfc3339nano(client: Client) -> None:
    client.report(
        "t",
        ("2019-02-03T04:05:06+09:00", "m", "a"),
        ("2019-02-03T04:05:06.500000Z", "m", "b"),
        ("2019-02-03T04:05:06.123456789-01:00", "m", "c"),
        ("0001-01-01T00:00:00Z", "m", "sentinel"),
    )
    assert client.get("t") == [
        ("0001-01-01T00:00:00Z", "m", "sentinel"),
        ("2019-02-02T19:05:06Z", "m", "a"),
        ("2019-02-03T04:05:06.5Z", "m", "b"),
        ("2019-02-03T05:05:06.123456Z", "m", "c"),
    ]


def test_get_filters_and_inclusive_bounds(client: Client) -> None:
    client.report("t", *[(f"2024-01-01T00:00:0{i}Z", "loss" if i % 2 else "acc", str(i)) for i in range(6)])
    assert [v for _, _, v in client.get("t", "loss")] == ["1", "3", "5"]
    window = client.get("t", start="2024-01-01T00:00:01Z", end="2024-01-01T01:00:03+01:00")
    assert [v for _, _, v in window] == ["1", "2", "3"]


@pytest.mark.parametrize("bound", ["start_time", "end_time"])
def test_bad_time_bound_names_the_field(client: Client, bound: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.stub.GetObservationLog(
            api_pb2.GetObservationLogRequest(trial_name="t", **{bound: "yesterday"}), timeout=30
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(f"{bound}: 'yesterday' is not an RFC 3339 timestamp")


def test_delete(client: Client) -> None:
    client.report("t", ("2024-01-01T00:00:00Z", "loss", "1"))
    client.report("u", ("2024-01-01T00:00:00Z", "loss", "2"))
    client.stub.DeleteObservationLog(api_pb2.DeleteObservationLogRequest(trial_name="t"), timeout=30)
    client.stub.DeleteObservationLog(api_pb2.DeleteObservationLogRequest(trial_name="never-there"), timeout=30)
    assert client.get("t") == []
    assert len(client.get("u")) == 1


def test_huge_report(client: Client) -> None:
    logs = [(f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.{i:06d}Z", f"m{i % 4}", str(i)) for i in range(25_000)]
    client.report("big", *logs)
    got = client.get("big")
    assert len(got) == 25_000
    assert len(client.get("big", "m3")) == 6_250


def test_concurrent_writers(client: Client) -> None:
    def write(worker: int) -> None:
        for i in range(20):
            client.report(
                f"w{worker}", (f"2024-01-01T00:00:{i:02d}Z", "loss", str(i)), ("2024-01-01T00:00:00Z", "acc", "1")
            )

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(write, range(64)))
    for worker in range(64):
        assert [v for _, _, v in client.get(f"w{worker}", "loss")] == [str(i) for i in range(20)]


def test_unicode_metric_names(client: Client) -> None:
    client.report("t", ("2024-01-01T00:00:00Z", "損失🎯", "0.5"), ("2024-01-01T00:00:01Z", "loss", "0.4"))
    assert client.get("t", "損失🎯") == [("2024-01-01T00:00:00Z", "損失🎯", "0.5")]


def test_report_keys_make_retries_idempotent(client: Client) -> None:
    key = uuid.uuid4().hex
    for _ in range(3):
        client.report("t", ("2024-01-01T00:00:00Z", "loss", "1"), key=key)
    client.report("t", ("2024-01-01T00:00:00Z", "loss", "1"))
    assert len(client.get("t")) == 2


def test_a_malformed_report_key_is_invalid(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.report("t", ("2024-01-01T00:00:00Z", "loss", "1"), key="bad key!")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "report key" in caught.value.details()


@pytest.mark.parametrize(
    ("logs", "field"),
    [
        ([("2024-01-01T00:00:00Z", "", "1")], "observation_log.metric_logs[0].metric.name"),
        ([("2024-01-01T00:00:00Z", "n" * 256, "1")], "observation_log.metric_logs[0].metric.name"),
        ([("2024-01-01T00:00:00Z", "m", "v" * 70_000)], "observation_log.metric_logs[0].metric.value"),
    ],
)
def test_values_outside_the_schema_are_invalid(client: Client, logs: list[tuple[str, str, str]], field: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.report("t", *logs)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(field)


def test_empty_trial_name_is_invalid_for_reports(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.report("", ("2024-01-01T00:00:00Z", "loss", "1"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "trial_name: must not be empty"


def test_health_and_reflection(client: Client) -> None:
    health = health_pb2_grpc.HealthStub(client.channel)
    for service in ("", "api.v1.beta1.DBManager"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as caught:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    reflect = reflection_pb2_grpc.ServerReflectionStub(client.channel)
    replies = reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    names = {s.name for r in replies for s in r.list_services_response.service}
    assert {"api.v1.beta1.DBManager", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names


@pytest.mark.parametrize("scheme", ["mysql", "postgresql"])
def test_database_outage_is_unavailable_then_recovers(scheme: str) -> None:
    with storage_testing.provision(scheme) as url:
        proxy = storage_testing.TcpProxy(url.host, url.port)
        try:
            with DBManagerServer(open_store(proxy.url_for(url)), health_interval=0.1) as server:
                client = Client(server.address)
                health = health_pb2_grpc.HealthStub(client.channel)
                client.report("t", ("2024-01-01T00:00:00Z", "loss", "1"))
                proxy.cut()
                with pytest.raises(grpc.RpcError) as caught:
                    client.report("t", ("2024-01-01T00:00:01Z", "loss", "2"))
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
                assert "database unavailable" in caught.value.details()
                assert _wait_for(health, health_pb2.HealthCheckResponse.NOT_SERVING)
                proxy.restore()
                assert _wait_for(health, health_pb2.HealthCheckResponse.SERVING)
                client.report("t", ("2024-01-01T00:00:02Z", "loss", "3"))
                assert [v for _, _, v in client.get("t")] == ["1", "3"]
                client.channel.close()
        finally:
            proxy.close()


def _wait_for(health: health_pb2_grpc.HealthStub, status: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status == status:
            return True
        time.sleep(0.05)
    return False


def test_requests_over_the_size_limit_are_refused_before_they_are_stored(tmp_path: Path) -> None:
    with DBManagerServer(open_store(f"sqlite:///{tmp_path}/katib.db"), max_message_bytes=1 << 20) as server:
        client = Client(server.address)
        value = "x" * 1000
        with pytest.raises(grpc.RpcError) as refused:
            client.report("big", *[("2024-01-01T00:00:00Z", "m", value)] * 1500)  # ~1.5 MiB
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        client.report("small", *[("2024-01-01T00:00:00Z", "m", value)] * 500)  # ~0.5 MiB
        assert client.get("big") == []
        assert len(client.get("small")) == 500
        client.channel.close()


REPORT_PATH = "/api.v1.beta1.DBManager/ReportObservationLog"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param([], id="no-message"),
        pytest.param([b"\x00\x00\x00"], id="short-length-prefix"),
        pytest.param([rawgrpc.frame(b"abcd", length=100)], id="body-shorter-than-its-prefix"),
    ],
)
def test_calls_cut_short_at_the_framing_level_are_answered(tmp_path: Path, data: list[bytes]) -> None:
    with DBManagerServer(open_store(f"sqlite:///{tmp_path}/katib.db")) as server:
        answer = rawgrpc.call(server.address, REPORT_PATH, data, wait=20)
        assert answer.status == grpc.StatusCode.INVALID_ARGUMENT.value[0], answer
        assert "no complete api.v1.beta1.ReportObservationLogRequest" in answer.message
        client = Client(server.address)
        client.report("t", ("2024-01-01T00:00:00Z", "loss", "1"))  # the server still serves
        assert len(client.get("t")) == 1
        client.channel.close()


def test_a_request_that_never_completes_is_answered_after_the_read_timeout(tmp_path: Path) -> None:
    with DBManagerServer(open_store(f"sqlite:///{tmp_path}/katib.db"), read_timeout=0.5) as server:
        half = rawgrpc.frame(b"abcd", length=100)
        answer = rawgrpc.call(server.address, REPORT_PATH, [half], end_stream=False, wait=20)
        assert answer.status == grpc.StatusCode.DEADLINE_EXCEEDED.value[0], answer
        assert "within 0.5 s" in answer.message


@pytest.mark.parametrize(
    ("data", "headers", "message"),
    [
        ([rawgrpc.frame(b"abcd", compressed=True)], [], "Compression bit set"),
        ([rawgrpc.frame(b"")], [("grpc-timeout", "xyz")], "grpc-timeout"),
    ],
)
def test_errors_grpc_core_answers_before_the_handler_are_internal(
    tmp_path: Path, data: list[bytes], headers: list[tuple[str, str]], message: str
) -> None:
    """grpcio decides these (no handler runs): INTERNAL with its message (docs/dbmanager.md)."""
    with DBManagerServer(open_store(f"sqlite:///{tmp_path}/katib.db")) as server:
        answer = rawgrpc.call(server.address, REPORT_PATH, data, headers=headers, wait=20)
        assert answer.status == grpc.StatusCode.INTERNAL.value[0], answer
        assert message in answer.message
