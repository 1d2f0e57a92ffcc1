"""Protobuf encoding of the few ``api.v1.beta1`` DBManager messages the SDK exchanges, by hand.

Why not the generated module: protobuf refuses a second definition of ``api.v1.beta1`` in one
process, so the SDK could not be imported next to the official ``kubeflow-katib`` (which registers
the same package); and trial images may lack protobuf altogether. The messages are tiny (strings
and nested messages only), and ``_wire_test.py`` checks every byte against the generated classes.
Field numbers: docs/katib-compat.md#wire-format.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

DBMANAGER_SERVICE = "api.v1.beta1.DBManager"
REPORT_METHOD = f"/{DBMANAGER_SERVICE}/ReportObservationLog"
GET_METHOD = f"/{DBMANAGER_SERVICE}/GetObservationLog"
DELETE_METHOD = f"/{DBMANAGER_SERVICE}/DeleteObservationLog"

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


@dataclass(frozen=True)
class Metric:
    """``api.v1.beta1.Metric``: a metric name and its opaque value text."""

    __slots__ = ("name", "value")  # dataclass(slots=True) needs 3.10; the trial path runs on 3.8

    name: str
    value: str


@dataclass(frozen=True)
class MetricLog:
    """``api.v1.beta1.MetricLog``: what ``get_trial_metrics`` returns (``log.metric.value``)."""

    __slots__ = ("time_stamp", "metric")  # dataclass(slots=True) needs 3.10; the trial path runs on 3.8

    time_stamp: str
    metric: Metric


# -- encoding ----------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (string or message), always written."""
    return _varint(number << 3 | _LEN) + _varint(len(payload)) + payload


def _string(number: int, text: str) -> bytes:
    """A proto3 string field: omitted when empty, as protobuf does."""
    return _field(number, text.encode("utf-8")) if text else b""


def encode_metric_log(time_stamp: str, name: str, value: str) -> bytes:
    """One ``MetricLog`` (with its ``metric`` always present) as the bytes of its message."""
    return _string(1, time_stamp) + _field(2, _string(1, name) + _string(2, value))


def encode_report(trial_name: str, metric_logs: Iterable[bytes]) -> bytes:
    """``ReportObservationLogRequest`` from pre-encoded ``MetricLog`` messages.

    ``observation_log`` is always present (``report_metrics({})`` sends ``0a01741200`` for trial ``t``).
    """
    log = b"".join(_field(1, entry) for entry in metric_logs)
    return _string(1, trial_name) + _field(2, log)


def encode_get(trial_name: str, metric_name: str = "", start_time: str = "", end_time: str = "") -> bytes:
    """``GetObservationLogRequest``."""
    return _string(1, trial_name) + _string(2, metric_name) + _string(3, start_time) + _string(4, end_time)


def encode_delete(trial_name: str) -> bytes:
    """``DeleteObservationLogRequest``."""
    return _string(1, trial_name)


# -- decoding ----------------------------------------------------------------------------------


class DecodeError(ValueError):
    """Bytes that are not a valid encoding of the expected message."""


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise DecodeError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 64:
            raise DecodeError("varint too long")


def _fields(data: bytes) -> Iterable[tuple[int, int, bytes | int]]:
    """``(number, wire type, value)`` for each field; length-delimited values are bytes."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise DecodeError("field number 0")
        if wire == _VARINT:
            value, pos = _read_varint(data, pos)
            yield number, wire, value
        elif wire == _LEN:
            size, pos = _read_varint(data, pos)
            if pos + size > end:
                raise DecodeError("truncated length-delimited field")
            yield number, wire, data[pos : pos + size]
            pos += size
        elif wire in (_I64, _I32):
            width = 8 if wire == _I64 else 4
            if pos + width > end:
                raise DecodeError("truncated fixed-width field")
            yield number, wire, int.from_bytes(data[pos : pos + width], "little")
            pos += width
        else:
            raise DecodeError(f"unsupported wire type {wire}")


def _text(value: bytes | int) -> str:
    if not isinstance(value, bytes):
        raise DecodeError("a string field has a non length-delimited wire type")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"invalid UTF-8 in a string field: {exc}") from None


def _message(value: bytes | int) -> bytes:
    if not isinstance(value, bytes):
        raise DecodeError("a message field has a non length-delimited wire type")
    return value


def _decode_metric_log(data: bytes) -> MetricLog:
    time_stamp = name = value = ""
    for number, _, raw in _fields(data):
        if number == 1:
            time_stamp = _text(raw)
        elif number == 2:
            # A message field seen twice merges, so later scalars win field by field.
            for inner, _, item in _fields(_message(raw)):
                if inner == 1:
                    name = _text(item)
                elif inner == 2:
                    value = _text(item)
    return MetricLog(time_stamp, Metric(name, value))


def decode_get_reply(data: bytes) -> list[MetricLog]:
    """The ``metric_logs`` of a ``GetObservationLogReply``, in wire order; unknown fields are skipped."""
    logs: list[MetricLog] = []
    for number, _, raw in _fields(data):
        if number == 1:
            logs.extend(_decode_metric_log(_message(entry)) for inner, _, entry in _fields(_message(raw)) if inner == 1)
    return logs
