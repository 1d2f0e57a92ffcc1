"""Poll until a condition holds; used by the control plane, the fixtures and the tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeoutError(TimeoutError):
    """The condition did not hold in time; the message says what was awaited and the last error."""


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    abort: Callable[[], str | None] = lambda: None,
) -> T:
    """Call `probe` until it returns a truthy value and return that value.

    Exceptions from `probe` count as "not yet" (the last one is reported on timeout).
    `abort` is checked every round; a non-None message ends the wait with `WaitTimeoutError` at once
    (e.g. "etcd exited").

    Raises:
        WaitTimeoutError: `timeout` seconds passed, or `abort` returned a message.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = probe()
        except Exception as exc:  # any failure means "not ready yet"
            last_error, result = exc, None
        if result:
            return result
        reason = abort()
        if reason is not None:
            raise WaitTimeoutError(f"gave up waiting for {what}: {reason}")
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise WaitTimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)
