"""The collector as a real process next to a real training process, reporting to a real DB manager.

The training runs exactly as the pod webhook wraps it (``pod_injection.wrap_command``, then the
kubelet's ``$$`` expansion); the collector finds it through ``/proc`` on this host, or — in a PID
namespace made with ``unshare``/``nsenter`` — as in a Pod with ``shareProcessNamespace``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from katib_api.v1beta1 import api_pb2, api_pb2_grpc
from katib_core import pod_injection
from katib_dbmanager.server import DBManagerServer
from katib_dbmanager.storage import testing as storage_testing
from pykatib import dbmanager

TRAIN = """
import sys, time
out = open({out!r}, "w") if {out!r} else sys.stdout
for line in {lines!r}:
    print(line, file=out, flush=True)
    time.sleep({pause})
sys.exit({code})
"""


@pytest.fixture(scope="module")
def db_manager() -> Iterator[DBManagerServer]:
    with storage_testing.supply("sqlite") as supply:
        server = DBManagerServer(supply.open()).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture()
def trial() -> str:
    return f"trial-{uuid.uuid4().hex[:10]}"


def stored(db_manager: DBManagerServer, trial: str) -> list[tuple[str, str, str]]:
    client = dbmanager.DBManagerClient(dbmanager.open_channel(db_manager.address))
    try:
        return [(log.time_stamp, log.metric.name, log.metric.value) for log in client.get(trial, timeout=30)]
    finally:
        client.channel.close()


def training_argv(
    tmp: Path,
    lines: Sequence[str],
    *,
    stdout_file: Path | None,
    directory: Path,
    code: int = 0,
    pause: float = 0.05,
    stops: bool = False,
    writes: Path | None = None,
) -> list[str]:
    """The wrapped command of a training printing ``lines`` (or writing them to ``writes``), as the kubelet runs it."""
    script = tmp / f"train-{uuid.uuid4().hex[:6]}.py"
    script.write_text(TRAIN.format(lines=list(lines), pause=pause, code=code, out=str(writes or "")))
    command, args = pod_injection.wrap_command(
        [sys.executable, str(script)], [], stdout_file=str(stdout_file) if stdout_file else None,
        directory=str(directory), early_stopping=stops,
    )  # fmt: skip
    return [*command, *(arg.replace("$$", "$") for arg in args)]  # the kubelet's $(VAR) expansion


def collector_argv(trial: str, db: str, path: Path, *extra: str, metrics: str = "loss;acc") -> list[str]:
    return [
        sys.executable, "-m", "katib_metrics_collector", "-t", trial, "-m", metrics, "-o-type", "minimize",
        "-s-db", db, "-path", str(path), "-p", "100ms", *extra,
    ]  # fmt: skip


def python_env() -> dict[str, str]:
    # Absolute: a process entering another mount namespace starts in its root directory.
    return {**os.environ, "PYTHONPATH": os.pathsep.join(os.path.abspath(p) for p in sys.path if p)}


def run_collector(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=python_env(), capture_output=True, text=True, timeout=300, check=False)


@contextlib.contextmanager
def training(argv: Sequence[str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, cwd=cwd)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)


def test_stdout_text_is_echoed_parsed_and_reported(tmp_path: Path, db_manager: DBManagerServer, trial: str) -> None:
    log = tmp_path / "metrics.log"
    lines = ["starting", "epoch 1 loss=0.9 acc=0.5", "2024-07-29T15:09:08Z epoch 2 loss=0.5", "Score=-7.53e-05 acc=.98"]
    with training(training_argv(tmp_path, lines, stdout_file=log, directory=tmp_path), tmp_path) as proc:
        done = run_collector(collector_argv(trial, db_manager.address, log, "-format", "TEXT"))
        assert proc.wait(60) == 0
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == lines  # StdOut: the sidecar's log is the training's output
    assert stored(db_manager, trial) == [
        ("0001-01-01T00:00:00Z", "loss", "0.9"),
        ("0001-01-01T00:00:00Z", "acc", "0.5"),
        ("0001-01-01T00:00:00Z", "acc", ".98"),
        ("2024-07-29T15:09:08Z", "loss", "0.5"),
    ]
    peak = re.search(r"peak RSS ([\d.]+) MiB", done.stderr)
    assert peak is not None
    assert float(peak.group(1)) < 100, "the sidecar must fit Katib's 100Mi memory limit"


def test_file_json_with_timestamps(tmp_path: Path, db_manager: DBManagerServer, trial: str) -> None:
    out = tmp_path / "out" / "metrics.json"
    out.parent.mkdir()
    writer = tmp_path / "write.py"
    writer.write_text(textwrap.dedent(f"""
        import json
        with open({str(out)!r}, "w") as f:
            f.write(json.dumps({{"loss": "0.7", "timestamp": 1722265748}}) + "\\n")
            f.write(json.dumps({{"loss": 0.6, "acc": "0.8", "timestamp": "2024-07-29T15:09:09Z"}}) + "\\n")
        """))
    command, args = pod_injection.wrap_command(
        [sys.executable, str(writer)], [], stdout_file=None, directory=str(out.parent), early_stopping=False
    )
    with training([*command, args[0].replace("$$", "$")], tmp_path) as proc:
        done = run_collector(collector_argv(trial, db_manager.address, out, "-format", "JSON"))
        assert proc.wait(60) == 0
    assert done.returncode == 0, done.stderr
    assert stored(db_manager, trial) == [
        ("2024-07-29T15:09:08Z", "loss", "0.7"),
        ("2024-07-29T15:09:09Z", "acc", "0.8"),
    ]


def test_an_objective_never_printed_is_reported_unavailable(
    tmp_path: Path, db_manager: DBManagerServer, trial: str
) -> None:
    log = tmp_path / "metrics.log"
    with training(training_argv(tmp_path, ["acc=0.5"], stdout_file=log, directory=tmp_path), tmp_path):
        done = run_collector(collector_argv(trial, db_manager.address, log))
    assert done.returncode == 0, done.stderr
    assert stored(db_manager, trial) == [("0001-01-01T00:00:00Z", "loss", "unavailable")]


def test_a_failed_training_is_not_reported(tmp_path: Path, db_manager: DBManagerServer, trial: str) -> None:
    log = tmp_path / "metrics.log"
    with training(training_argv(tmp_path, ["loss=1"], stdout_file=log, directory=tmp_path, code=3), tmp_path) as proc:
        done = run_collector(collector_argv(trial, db_manager.address, log))
        assert proc.wait(60) == 3  # the wrapped command keeps the training's exit status
    assert done.returncode == 1
    assert "training container is failed" in done.stderr
    assert (tmp_path / f"{proc.pid}.pid").read_text().strip() == "failed"
    assert stored(db_manager, trial) == []


def test_a_training_that_finished_before_the_collector_started(
    tmp_path: Path, db_manager: DBManagerServer, trial: str
) -> None:
    log = tmp_path / "metrics.log"
    with training(training_argv(tmp_path, ["loss=0.25"], stdout_file=log, directory=tmp_path), tmp_path) as proc:
        assert proc.wait(60) == 0
    done = run_collector(collector_argv(trial, db_manager.address, log))
    assert done.returncode == 0, done.stderr
    assert "finished before the collector looked" in done.stderr
    assert stored(db_manager, trial) == [("0001-01-01T00:00:00Z", "loss", "0.25")]


def test_the_collector_waits_for_a_training_that_starts_later(
    tmp_path: Path, db_manager: DBManagerServer, trial: str
) -> None:
    log = tmp_path / "metrics.log"
    collector = subprocess.Popen(
        collector_argv(trial, db_manager.address, log),
        env=python_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with training(training_argv(tmp_path, ["loss=0.5", "loss=0.4"], stdout_file=log, directory=tmp_path), tmp_path):
            _, err = collector.communicate(timeout=120)
    finally:
        if collector.poll() is None:
            collector.kill()
    assert collector.returncode == 0, err
    assert [value for _, _, value in stored(db_manager, trial)] == ["0.5", "0.4"]


class EarlyStoppingService(api_pb2_grpc.EarlyStoppingServicer):
    """The EarlyStopping service of a suggestion, reduced to recording SetTrialStatus."""

    def __init__(self) -> None:
        self.stopped: list[str] = []
        self.called = threading.Event()

    def SetTrialStatus(  # noqa: N802 - the gRPC method name
        self, request: api_pb2.SetTrialStatusRequest, context: grpc.ServicerContext
    ) -> api_pb2.SetTrialStatusReply:
        self.stopped.append(request.trial_name)
        self.called.set()
        return api_pb2.SetTrialStatusReply()


@pytest.fixture()
def early_stopping() -> Iterator[tuple[str, EarlyStoppingService]]:
    service = EarlyStoppingService()  # type: ignore[abstract]  # the other RPCs are not called
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    api_pb2_grpc.add_EarlyStoppingServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", service
    finally:
        server.stop(None)


def test_early_stopping_stops_the_training_reports_and_tells_the_service(
    tmp_path: Path, db_manager: DBManagerServer, trial: str, early_stopping: tuple[str, EarlyStoppingService]
) -> None:
    address, service = early_stopping
    log = tmp_path / "metrics.log"
    # 200 epochs of ~0.1 s each; loss falls below 2.5 at the 4th report
    lines = [f"epoch {i} loss={5 - i * 0.5}" for i in range(200)]
    argv = training_argv(tmp_path, lines, stdout_file=log, directory=tmp_path, pause=0.1, stops=True)
    with training(argv, tmp_path) as proc:
        done = run_collector(
            collector_argv(
                trial, db_manager.address, log, "-stop-rule", "loss;2.5;less;2", "-s-earlystop", address, metrics="loss"
            )
        )
        assert proc.wait(60) == 0  # the wrapper reads the early stop as success
    assert done.returncode == 0, done.stderr
    assert service.stopped == [trial]
    values = [float(value) for _, name, value in stored(db_manager, trial)]
    assert 2.0 in values  # the value that met the rule was reported
    assert len(values) < len(lines)  # and the training did not run to its end
    assert (tmp_path / f"{proc.pid}.pid").read_text().strip() == "completed"


def test_early_stopping_of_a_json_file_without_a_service(
    tmp_path: Path, db_manager: DBManagerServer, trial: str
) -> None:
    log = tmp_path / "metrics.json"
    lines = ['{"loss": "3"}', '{"loss": "1"}'] + ['{"loss": "0.5"}'] * 300
    argv = training_argv(tmp_path, lines, stdout_file=None, writes=log, directory=tmp_path, pause=0.1, stops=True)
    with training(argv, tmp_path) as proc:
        done = run_collector(
            collector_argv(trial, db_manager.address, log, "-format", "JSON", "-stop-rule", "loss;2;less;0")
        )
        assert proc.wait(60) == 0
    assert done.returncode == 0, done.stderr
    assert len(stored(db_manager, trial)) < len(lines)


def namespaced(pause_pid: int, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[str]:
    """Start ``argv`` inside the PID (and /proc) namespace of ``pause_pid``: a container of the 'Pod'."""
    command = ["nsenter", "-t", str(pause_pid), "-p", "-m", f"--wd={os.getcwd()}", *argv]
    proc: subprocess.Popen[str] = subprocess.Popen(command, text=True, **kwargs)  # type: ignore[call-overload]
    return proc


@pytest.fixture()
def pod_namespace() -> Iterator[int]:
    """A PID namespace whose pid 1 is a pause process, like a Pod with shareProcessNamespace."""
    for tool in ("unshare", "nsenter"):
        assert shutil.which(tool), f"{tool} (util-linux) is needed: apt-get install util-linux"
    unshare = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "sleep", "600"])
    try:
        children = Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children")
        deadline = time.monotonic() + 30
        while not children.read_text().split():
            assert unshare.poll() is None, "unshare --pid failed: this test needs CAP_SYS_ADMIN (root)"
            assert time.monotonic() < deadline, "unshare did not start its pause process"
            time.sleep(0.05)
        yield int(children.read_text().split()[0])
    finally:
        unshare.kill()
        unshare.wait(30)


def test_in_a_shared_pid_namespace_it_waits_for_every_container(
    tmp_path: Path, db_manager: DBManagerServer, trial: str, pod_namespace: int
) -> None:
    log = tmp_path / "metrics.log"
    argv = training_argv(tmp_path, ["loss=0.75", "acc=0.5"], stdout_file=log, directory=tmp_path)
    env = python_env()
    trainer = namespaced(pod_namespace, argv, env=env)
    other = namespaced(pod_namespace, [sys.executable, "-c", "import time; time.sleep(3)"], env=env)
    collector = namespaced(
        pod_namespace, collector_argv(trial, db_manager.address, log, "-w", "true"), env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = collector.communicate(timeout=120)
        other_done_first = other.poll() is not None
    finally:
        for proc in (trainer, other, collector):
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)
    assert collector.returncode == 0, err
    assert "and for 1 more container processes" in err  # it saw the other container's process…
    assert other_done_first  # …and waited for it (wait-all)
    assert trainer.returncode == 0
    assert [value for _, _, value in stored(db_manager, trial)] == ["0.75", "0.5"]


def test_set_trial_status_bytes_match_the_generated_message() -> None:
    expected = api_pb2.SetTrialStatusRequest(trial_name="trial-1").SerializeToString()
    assert dbmanager.encode_set_trial_status("trial-1") == expected
