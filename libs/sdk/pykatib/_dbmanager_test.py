"""Retry rules of DBManagerClient, on a scripted channel (our own Channel protocol) and a fake clock."""

from collections.abc import Sequence

import pytest

from pykatib import _dbmanager, _wire
from pykatib._transport import RpcError, StatusCode


class Script:
    """Answers calls from a list: an RpcError to raise, or reply bytes."""

    name = "script"

    def __init__(self, *answers: RpcError | bytes) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, float, tuple[tuple[str, str], ...]]] = []

    def unary(self, method: str, payload: bytes, *, timeout: float, metadata: Sequence[tuple[str, str]] = ()) -> bytes:
        self.calls.append((method, timeout, tuple(metadata)))
        answer = self.answers.pop(0)
        if isinstance(answer, RpcError):
            raise answer
        return answer

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client(script: Script, clock: Clock) -> _dbmanager.DBManagerClient:
    return _dbmanager.DBManagerClient(script, sleep=clock.sleep, clock=clock, jitter=lambda: 1.0)


UNAVAILABLE = RpcError(StatusCode.UNAVAILABLE, "connection refused")


def test_retries_until_success_with_the_same_key() -> None:
    cancelled = RpcError(StatusCode.CANCELLED, "stream reset by the server")
    script, clock = Script(UNAVAILABLE, RpcError(StatusCode.DEADLINE_EXCEEDED, "slow"), cancelled, b""), Clock()
    client(script, clock).report("t", [], key="k" * 32, timeout=120)
    assert [metadata for _, _, metadata in script.calls] == [(("pykatib-report-key", "k" * 32),)] * 4
    assert clock.sleeps == [0.05, 0.1, 0.2]


def test_gives_up_when_the_timeout_is_spent() -> None:
    script, clock = Script(*[UNAVAILABLE] * 100), Clock()
    with pytest.raises(RpcError) as caught:
        client(script, clock).report("t", [], key="k" * 32, timeout=10)
    assert caught.value is UNAVAILABLE
    assert sum(clock.sleeps) <= 10
    assert max(clock.sleeps) == _dbmanager.BACKOFF_MAX


def test_other_codes_fail_at_once() -> None:
    invalid = RpcError(StatusCode.INVALID_ARGUMENT, "observation_log.metric_logs[0].metric.name: must not be empty")
    script, clock = Script(invalid), Clock()
    with pytest.raises(RpcError) as caught:
        client(script, clock).report("t", [], key="k" * 32, timeout=120)
    assert caught.value is invalid
    assert clock.sleeps == []


def test_one_attempt_waits_at_most_the_attempt_timeout() -> None:
    script, clock = Script(b""), Clock()
    client(script, clock).report("t", [], key="k" * 32, timeout=120)
    assert script.calls[0][1] == _dbmanager.ATTEMPT_TIMEOUT


def test_reads_and_deletes_are_retried_too() -> None:
    reply = bytes.fromhex("0a00")
    script, clock = Script(UNAVAILABLE, reply, UNAVAILABLE, b""), Clock()
    assert client(script, clock).get("t", timeout=30) == []
    client(script, clock).delete("t", timeout=30)
    assert [method for method, _, _ in script.calls] == [_wire.GET_METHOD] * 2 + [_wire.DELETE_METHOD] * 2


def test_backoff_is_exponential_capped_and_half_random() -> None:
    low = _dbmanager.DBManagerClient(Script(), jitter=lambda: 0.0)
    high = _dbmanager.DBManagerClient(Script(), jitter=lambda: 1.0)
    assert [high.backoff(a) for a in range(7)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
    assert [low.backoff(a) for a in range(3)] == [0.025, 0.05, 0.1]


def test_keys_are_fresh_and_valid() -> None:
    keys = {_dbmanager.new_report_key() for _ in range(1000)}
    assert len(keys) == 1000
    assert all(len(key) == 32 for key in keys)
