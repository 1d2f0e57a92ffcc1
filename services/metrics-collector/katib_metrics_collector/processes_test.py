"""Process discovery on a synthetic ``/proc`` (the files the kernel would show), for the cases real
processes make hard to arrange: pod roots, zombies, kernel threads, a reused pid."""

from __future__ import annotations

from pathlib import Path

import pytest

from katib_metrics_collector import processes

MARKED = "sh -c python train.py 1>/m/metrics.log 2>&1 && echo completed > /m/$$.pid"


class Proc:
    """A fake ``/proc`` tree."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add(self, pid: int, ppid: int, cmdline: str, *, state: str = "S", started: int = 100) -> None:
        entry = self.root / str(pid)
        entry.mkdir(exist_ok=True)
        fields = [state, str(ppid), *["0"] * 17, str(started), "0"]
        (entry / "stat").write_text(f"{pid} (comm with ) paren) {' '.join(fields)}\n")
        (entry / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode() + b"\0")


@pytest.fixture()
def proc(tmp_path: Path) -> Proc:
    return Proc(tmp_path)


def test_in_a_pod_the_marked_root_is_the_training_and_other_roots_are_waited_for(proc: Proc) -> None:
    proc.add(1, 0, "/pause")
    proc.add(7, 0, "istio-proxy")
    proc.add(12, 0, MARKED)
    proc.add(13, 12, MARKED)  # a subshell carries the marker too
    proc.add(14, 13, "python train.py")
    proc.add(20, 0, "")  # a zombie or kernel thread: no command line
    found = processes.find_training("/m", wait_all=True, fallback=False, proc=proc.root)
    assert found is not None
    assert found.main is not None
    assert found.main.pid == 12
    assert [p.pid for p in found.others] == [7]
    alone = processes.find_training("/m", wait_all=False, fallback=False, proc=proc.root)
    assert alone is not None
    assert alone.others == ()


def test_on_a_plain_node_only_the_marker_counts(proc: Proc) -> None:
    proc.add(1, 0, "/sbin/init")
    proc.add(2, 0, "")  # kthreadd
    proc.add(900, 455, "python -m katib_testcluster.node_agent")
    assert processes.find_training("/m", wait_all=True, fallback=True, proc=proc.root) is None
    proc.add(901, 900, MARKED)
    found = processes.find_training("/m", wait_all=True, fallback=False, proc=proc.root)
    assert found is not None
    assert found.main is not None
    assert (found.main.pid, found.others) == (901, ())
    assert processes.find_training("/other", wait_all=True, fallback=False, proc=proc.root) is None


def test_without_a_marker_the_first_root_after_the_grace(proc: Proc) -> None:
    proc.add(1, 0, "/pause")
    proc.add(5, 0, "python train.py")
    assert processes.find_training("/m", wait_all=False, fallback=False, proc=proc.root) is None
    found = processes.find_training("/m", wait_all=False, fallback=True, proc=proc.root)
    assert found is not None
    assert found.main is not None
    assert found.main.pid == 5


def test_zombies_and_reused_pids_are_not_alive(proc: Proc) -> None:
    proc.add(5, 0, MARKED, started=100)
    training = processes.read(5, proc.root)
    assert training is not None
    assert processes.alive(training, proc.root)
    proc.add(5, 0, MARKED, state="Z", started=100)
    assert not processes.alive(training, proc.root)
    proc.add(5, 0, "something else", started=250)
    assert not processes.alive(training, proc.root)
    assert not processes.alive(training, proc.root / "missing")


def test_descendants_deepest_last(proc: Proc) -> None:
    proc.add(10, 0, MARKED)
    proc.add(11, 10, MARKED)
    proc.add(12, 11, "python train.py")
    proc.add(13, 12, "python worker")
    proc.add(20, 0, "other")
    assert [p.pid for p in processes.descendants(10, proc.root)] == [11, 12, 13]


@pytest.mark.parametrize(
    ("content", "outcome"),
    [
        ("completed\n", processes.Outcome.COMPLETED),
        ("early-stopped", processes.Outcome.EARLY_STOPPED),
        ("failed\n", processes.Outcome.FAILED),
        ("garbage", processes.Outcome.FAILED),
        (None, processes.Outcome.FAILED),
    ],
)
def test_outcome_of_the_marker_file(tmp_path: Path, content: str | None, outcome: processes.Outcome) -> None:
    if content is not None:
        (tmp_path / "12.pid").write_text(content)
    assert processes.outcome(str(tmp_path), 12)[0] is outcome


def test_a_training_that_finished_before(tmp_path: Path) -> None:
    assert processes.finished_before(str(tmp_path)) is None
    (tmp_path / "3.pid").write_text("failed")
    found = processes.finished_before(str(tmp_path))
    assert found is not None
    assert found[0] is processes.Outcome.FAILED
    (tmp_path / "3.pid").write_text("completed")
    assert processes.finished_before(str(tmp_path)) == (processes.Outcome.COMPLETED, "training completed")
