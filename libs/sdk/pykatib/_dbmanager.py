"""Katib's DBManager RPCs over one channel: reports retried safely, reads, deletes.

A report carries an idempotency key (gRPC metadata ``pykatib-report-key``, docs/dbmanager.md):
the same key on every retry of one report, so our DB manager stores it exactly once however
often it is retried. Katib's own DB manager ignores the header (a retry there may duplicate).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Sequence

from pykatib import _wire
from pykatib._transport import Channel, RpcError, StatusCode

REPORT_KEY_HEADER = "pykatib-report-key"
#: A push token for DB managers that require one (``--auth-secret-file``): set by the trial
#: controller / local runner for trials, by users for reads (katib_core.push_auth).
TOKEN_ENV = "KATIB_TRIAL_TOKEN"
#: Worth another attempt: the server is restarting / unreachable, or the attempt ran out of time.
#: Worth another attempt with the same report key. CANCELLED: a server under load (thousands of
#: concurrent calls on one connection) resets streams; the key makes the retry safe.
RETRYABLE = frozenset({StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED, StatusCode.CANCELLED})
#: One attempt never waits longer than this, so a half-open connection is abandoned and retried.
ATTEMPT_TIMEOUT = 20.0
BACKOFF_BASE = 0.05
BACKOFF_MAX = 2.0


def new_report_key() -> str:
    """A fresh idempotency key (32 hex digits)."""
    return uuid.uuid4().hex


class DBManagerClient:
    """The three DBManager RPCs on ``channel``; ``report`` retries with jittered backoff."""

    def __init__(
        self,
        channel: Channel,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        token: Callable[[], str | None] = lambda: os.environ.get(TOKEN_ENV) or None,
    ) -> None:
        self.channel = channel
        self._token = token
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter

    def report(self, trial_name: str, metric_logs: Sequence[bytes], *, key: str, timeout: float) -> None:
        """Store pre-encoded metric logs of one trial, retrying until ``timeout`` seconds have passed.

        Raises:
            RpcError: a non-retryable status, or the last retryable one once time is up.
        """
        payload = _wire.encode_report(trial_name, metric_logs)
        self._call(_wire.REPORT_METHOD, payload, timeout, ((REPORT_KEY_HEADER, key),))

    def _call(self, method: str, payload: bytes, timeout: float, metadata: Sequence[tuple[str, str]] = ()) -> bytes:
        """One RPC, retried on RETRYABLE codes with jittered backoff until ``timeout`` seconds have passed."""
        deadline = self._clock() + timeout
        token = self._token()
        if token:
            metadata = (*metadata, ("authorization", f"Bearer {token}"))
        attempt = 0
        while True:
            left = deadline - self._clock()
            if left <= 0:
                raise RpcError(StatusCode.DEADLINE_EXCEEDED, f"no attempt left within the {timeout:g} s timeout")
            try:
                return self.channel.unary(method, payload, timeout=min(left, ATTEMPT_TIMEOUT), metadata=metadata)
            except RpcError as exc:
                if exc.code not in RETRYABLE:
                    raise
                delay = self.backoff(attempt)
                if self._clock() + delay >= deadline:
                    raise
            attempt += 1
            self._sleep(delay)

    def backoff(self, attempt: int) -> float:
        """Delay before retry ``attempt + 1``: exponential, capped, half of it random ("equal jitter")."""
        ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2.0**attempt)
        return ceiling / 2 + self._jitter() * ceiling / 2

    def get(
        self, trial_name: str, metric_name: str = "", start_time: str = "", end_time: str = "", *, timeout: float
    ) -> list[_wire.MetricLog]:
        """``GetObservationLog``: the trial's metric logs in time order (retried like reports: reads are idempotent)."""
        reply = self._call(_wire.GET_METHOD, _wire.encode_get(trial_name, metric_name, start_time, end_time), timeout)
        try:
            return _wire.decode_get_reply(reply)
        except _wire.DecodeError as exc:
            raise RpcError(StatusCode.INTERNAL, f"undecodable GetObservationLogReply: {exc}") from None

    def delete(self, trial_name: str, *, timeout: float) -> None:
        """``DeleteObservationLog``: every metric log of the trial (retried: deleting twice is harmless)."""
        self._call(_wire.DELETE_METHOD, _wire.encode_delete(trial_name), timeout)
