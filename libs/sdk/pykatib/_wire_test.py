"""The hand-written codec against the generated ``api_pb2`` classes, byte for byte."""

from hypothesis import given
from hypothesis import strategies as st

from katib_api.v1beta1 import api_pb2
from pykatib import _wire

# docs/katib-compat.md#wire-format, produced with the official SDK's generated module.
REPORT_VECTOR = (
    "0a1874756e652d6578706572696d656e742d78376b327039717a12280a260a14323032342d30372d32395431353a30393a30"
    "385a120e0a06726573756c741204302e3939"
)
GET_VECTOR = "0a1874756e652d6578706572696d656e742d78376b327039717a1206726573756c74"

text = st.text(max_size=300)
logs = st.lists(st.tuples(text, text, text), max_size=30)


def generated_report(trial: str, entries: list[tuple[str, str, str]]) -> bytes:
    request = api_pb2.ReportObservationLogRequest(
        trial_name=trial,
        observation_log=api_pb2.ObservationLog(
            metric_logs=[
                api_pb2.MetricLog(time_stamp=stamp, metric=api_pb2.Metric(name=name, value=value))
                for stamp, name, value in entries
            ]
        ),
    )
    return request.SerializeToString()


def test_known_vectors() -> None:
    report = _wire.encode_report(
        "tune-experiment-x7k2p9qz", [_wire.encode_metric_log("2024-07-29T15:09:08Z", "result", "0.99")]
    )
    assert report.hex() == REPORT_VECTOR
    assert _wire.encode_get("tune-experiment-x7k2p9qz", "result").hex() == GET_VECTOR
    assert _wire.encode_report("t", []).hex() == "0a01741200"  # what report_metrics({}) sends
    assert _wire.decode_get_reply(bytes.fromhex("0a00")) == []
    assert _wire.decode_get_reply(b"") == []


@given(text, logs)
def test_report_encoding_matches_protobuf(trial: str, entries: list[tuple[str, str, str]]) -> None:
    ours = _wire.encode_report(trial, [_wire.encode_metric_log(*entry) for entry in entries])
    assert ours == generated_report(trial, entries)


@given(text, text, text, text)
def test_get_and_delete_encoding_match_protobuf(trial: str, metric: str, start: str, end: str) -> None:
    request = api_pb2.GetObservationLogRequest(trial_name=trial, metric_name=metric, start_time=start, end_time=end)
    assert _wire.encode_get(trial, metric, start, end) == request.SerializeToString()
    assert _wire.encode_delete(trial) == api_pb2.DeleteObservationLogRequest(trial_name=trial).SerializeToString()


@given(logs)
def test_reply_decoding_matches_protobuf(entries: list[tuple[str, str, str]]) -> None:
    reply = api_pb2.GetObservationLogReply(
        observation_log=api_pb2.ObservationLog(
            metric_logs=[
                api_pb2.MetricLog(time_stamp=stamp, metric=api_pb2.Metric(name=name, value=value))
                for stamp, name, value in entries
            ]
        )
    )
    decoded = _wire.decode_get_reply(reply.SerializeToString())
    assert decoded == [_wire.MetricLog(stamp, _wire.Metric(name, value)) for stamp, name, value in entries]


@given(logs, st.integers(min_value=0, max_value=2**63), st.binary(max_size=20))
def test_unknown_fields_are_skipped(entries: list[tuple[str, str, str]], number: int, blob: bytes) -> None:
    # Fields a newer proto might add (varint, fixed64, bytes, fixed32) at every level.
    extra = (
        b"\x48"
        + _wire._varint(number)
        + b"\x51"
        + bytes(8)
        + b"\x5a"
        + _wire._varint(len(blob))
        + blob
        + b"\x65"
        + bytes(4)
    )
    log = b"".join(
        b"\x0a" + _wire._varint(len(body)) + body
        for body in (_wire.encode_metric_log(*entry) + extra for entry in entries)
    )
    reply = b"\x0a" + _wire._varint(len(log + extra)) + log + extra + extra
    assert _wire.decode_get_reply(reply) == [_wire.MetricLog(s, _wire.Metric(n, v)) for s, n, v in entries]


def test_merged_submessages_follow_protobuf() -> None:
    # Two observation_log fields concatenate their metric logs; a metric seen twice merges field by field.
    first = api_pb2.GetObservationLogReply(
        observation_log=api_pb2.ObservationLog(
            metric_logs=[api_pb2.MetricLog(time_stamp="a", metric=api_pb2.Metric(name="x"))]
        )
    ).SerializeToString()
    second = api_pb2.GetObservationLogReply(
        observation_log=api_pb2.ObservationLog(metric_logs=[api_pb2.MetricLog(time_stamp="b")])
    ).SerializeToString()
    log = b"\x0a\x01t" + b"\x12\x03\x0a\x01n" + b"\x12\x03\x12\x01v"  # metric: {name: n}, then {value: v}
    observation = b"\x0a" + bytes([len(log)]) + log
    metric_twice = b"\x0a" + bytes([len(observation)]) + observation
    for raw in (first + second, metric_twice):
        expected = api_pb2.GetObservationLogReply.FromString(raw).observation_log.metric_logs
        assert _wire.decode_get_reply(raw) == [
            _wire.MetricLog(m.time_stamp, _wire.Metric(m.metric.name, m.metric.value)) for m in expected
        ]


def test_garbage_is_a_decode_error() -> None:
    for raw in (b"\x0a\x05ab", b"\x0a", b"\x0f", b"\x0a\x04\x0a\x02\xff\xfe"):
        try:
            _wire.decode_get_reply(raw)
        except _wire.DecodeError:
            continue
        raise AssertionError(f"{raw!r} decoded")
