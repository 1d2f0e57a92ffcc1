import threading

import pytest

from katib_operator.workqueue import ShutDownError, WorkQueue


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_keys_added_while_waiting_are_processed_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "a", "a"):
        queue.add(key)
    assert [queue.get(0), queue.get(0)] == ["a", "b"]
    with pytest.raises(TimeoutError):
        queue.get(0)


def test_a_key_added_while_processing_comes_back_after_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    key = queue.get(0)
    queue.add("a")
    with pytest.raises(TimeoutError):  # never two workers on one key
        queue.get(0)
    queue.done(key)
    assert queue.get(0) == "a"


def test_add_after_and_backoff_follow_the_clock() -> None:
    clock = Clock()
    queue: WorkQueue[str] = WorkQueue(base_delay=1.0, max_delay=4.0, clock=clock)
    queue.add_after("late", 5.0)
    assert [queue.retry("x"), queue.retry("x"), queue.retry("x"), queue.retry("x")] == [1.0, 2.0, 4.0, 4.0]
    queue.forget("x")
    assert queue.retry("x") == 1.0
    with pytest.raises(TimeoutError):
        queue.get(0)
    clock.now = 1.0
    assert queue.get(0) == "x"
    clock.now = 5.0
    assert queue.get(0) == "late"


def test_shut_down_wakes_blocked_workers() -> None:
    queue: WorkQueue[str] = WorkQueue()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            queue.get()
        except ShutDownError as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    queue.shut_down()
    thread.join(10)
    assert len(errors) == 1


def test_repeated_delays_coalesce_into_one_reconcile() -> None:
    clock = Clock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    for _ in range(100):
        queue.add_after("parent", 0.3)
    assert len(queue) == 1
    clock.now = 0.3
    assert queue.get(0) == "parent"
    queue.done("parent")
    with pytest.raises(TimeoutError):
        queue.get(0)
