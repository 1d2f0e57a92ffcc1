"""Local mode end to end: real trial processes, a real in-process DB manager, the real core logic."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from katib_core import constants
from katib_core.errors import ValidationError
from katib_core.models import ConfigMapSource, Experiment, Suggestion
from katib_suggest.algorithms import Suggester
from pykatib_local import backend
from pykatib_local.runner import Progress
from pykatib_local.session import LocalSession


def experiment(name: str, script: str, *, collector: str = "Push", image: str = "ignored", **spec: Any) -> Experiment:
    """An Experiment whose trials run ``python -c script`` with ``x`` in argv[1]."""
    body: dict[str, Any] = {
        "objective": {"type": "minimize", "objectiveMetricName": "loss"},
        "algorithm": {"algorithmName": "random", "algorithmSettings": [{"name": "random_state", "value": "3"}]},
        "parallelTrialCount": 2,
        "maxTrialCount": 4,
        "metricsCollectorSpec": {"collector": {"kind": collector}},
        "parameters": [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}],
        "trialTemplate": {
            "primaryContainerName": "main",
            "trialParameters": [{"name": "x", "reference": "x"}],
            "trialSpec": {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {
                                    "name": "main",
                                    "image": image,
                                    "command": ["python", "-c", textwrap.dedent(script), "${trialParameters.x}"],
                                }
                            ],
                        }
                    }
                },
            },
        },
        **spec,
    }
    return Experiment.from_api(
        {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": name}, "spec": body}
    )


PUSH = """
    import sys, pykatib
    x = float(sys.argv[1])
    for step in range(3):
        pykatib.report_metrics({"loss": (x - 0.3) ** 2 + 1 / (step + 1)}, step=step)
"""


def run(session: LocalSession, exp: Experiment, *, stop: threading.Event | None = None, **kwargs: Any) -> Experiment:
    created = session.store.create(backend.prepare(exp, "default"))
    assert created.metadata is not None
    session.run("default", created.metadata.name or "", stop=stop or threading.Event(), **kwargs)
    return session.store.get(Experiment, "default", created.metadata.name or "")


def conditions(obj: Any) -> list[str]:
    return [c.type for c in obj.status.conditions or [] if c.status == constants.CONDITION_TRUE]


def test_push_experiment_runs_to_max_trials(session: LocalSession) -> None:
    final = run(session, experiment("push", PUSH))
    assert "Succeeded" in conditions(final)
    assert final.status is not None
    assert (final.status.trials, final.status.trials_succeeded) == (4, 4)
    trials = session.store.list_trials("default", experiment="push")
    assert len(trials) == 4
    optimal = final.status.current_optimal_trial
    assert optimal is not None
    assert optimal.best_trial_name in {t.metadata.name for t in trials if t.metadata}
    best = min(float(next(m.min for m in t.status.observation.metrics if m.name == "loss")) for t in trials)  # type: ignore[union-attr,arg-type]
    assert float(next(m.min for m in optimal.observation.metrics if m.name == "loss")) == best  # type: ignore[union-attr,arg-type]
    logs = session.db.get(optimal.best_trial_name or "", timeout=10)
    assert [log.metric.name for log in logs].count("loss") == 3
    assert [log.metric.name for log in logs].count("pykatib.step") == 3


def test_stdout_trials_are_parsed_like_katibs_sidecar(session: LocalSession) -> None:
    script = """
        import sys
        x = float(sys.argv[1])
        print("starting")
        for step in range(3):
            print(f"epoch {step}: loss={(x - 0.5) ** 2 + step / 10:.4f}", flush=True)
    """
    final = run(session, experiment("stdout", script, collector="StdOut"))
    assert "Succeeded" in conditions(final)
    for trial in session.store.list_trials("default", experiment="stdout"):
        assert trial.metadata is not None
        assert "Succeeded" in conditions(trial)
        assert (
            len([log for log in session.db.get(trial.metadata.name or "", timeout=10) if log.metric.name == "loss"])
            == 3
        )


def test_a_crashing_trial_is_failed_with_exit_code_and_log_tail(session: LocalSession) -> None:
    script = """
        import sys
        print("about to fail with a useful message")
        sys.exit(3)
    """
    final = run(session, experiment("crash", script, maxFailedTrialCount=1))
    assert "Failed" in conditions(final)
    failed = [t for t in session.store.list_trials("default", experiment="crash") if "Failed" in conditions(t)]
    assert failed
    message = next(c.message for c in failed[0].status.conditions or [] if c.type == "Failed")  # type: ignore[union-attr]
    assert "exit code 3" in (message or "")
    assert "about to fail with a useful message" in (message or "")


def test_a_push_trial_that_never_reports_is_metrics_unavailable(session: LocalSession) -> None:
    final = run(session, experiment("silent", "print('no metrics')", maxTrialCount=2))
    assert final.status is not None
    assert final.status.trial_metrics_unavailable == 2
    for trial in session.store.list_trials("default", experiment="silent"):
        assert trial.metadata is not None
        assert "MetricsUnavailable" in conditions(trial)
        logs = session.db.get(trial.metadata.name or "", timeout=10)
        assert [(log.time_stamp, log.metric.value) for log in logs] == [("0001-01-01T00:00:00Z", "unavailable")]


def test_interrupted_experiments_resume_without_duplicates(tmp_path: Path) -> None:
    slow = """
        import sys, time, pykatib
        time.sleep(1.0)
        pykatib.report_metrics({"loss": float(sys.argv[1])})
    """
    work = tmp_path / "work"
    exp = experiment("resume", slow, maxTrialCount=6)
    stop = threading.Event()

    def interrupt_after_two(progress: Progress) -> None:
        done = [t for t in progress.trials if "Succeeded" in conditions(t)]
        if len(done) >= 2:
            stop.set()  # what Ctrl-C does: trial processes are stopped, state stays on disk

    with LocalSession(work) as first:
        interrupted = run(first, exp, stop=stop, on_progress=interrupt_after_two)
        assert "Succeeded" not in conditions(interrupted)
    with LocalSession(work) as second:
        second.run("default", "resume", stop=threading.Event())
        final = second.store.get(Experiment, "default", "resume")
        trials = second.store.list_trials("default", experiment="resume")
    assert "Succeeded" in conditions(final)
    assert len(trials) == 6
    assert all("Succeeded" in conditions(t) for t in trials)


def test_gpus_are_shared_disjointly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")  # the runner's devices (no real GPU needed)
    record = tmp_path / "gpus.jsonl"
    script = f"""
        import json, os, sys, time, pykatib
        start = time.time()
        time.sleep(0.4)
        with open({str(record)!r}, "a") as out:
            row = {{"gpus": os.environ["CUDA_VISIBLE_DEVICES"], "start": start, "end": time.time()}}
            out.write(json.dumps(row) + "\\n")
        pykatib.report_metrics({{"loss": float(sys.argv[1])}})
    """
    exp = experiment("gpus", script, parallelTrialCount=3, maxTrialCount=5)
    container = exp.spec.trial_template.trial_spec["spec"]["template"]["spec"]["containers"][0]  # type: ignore[union-attr,index]
    container["resources"] = {"limits": {"nvidia.com/gpu": "2"}}
    with LocalSession(tmp_path / "work") as session:
        final = run(session, exp)
    assert "Succeeded" in conditions(final)
    runs = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(runs) == 5
    for run_ in runs:
        assert len(run_["gpus"].split(",")) == 2
    for a in runs:
        for b in runs:
            if a is not b and a["start"] < b["end"] and b["start"] < a["end"]:
                assert not set(a["gpus"].split(",")) & set(b["gpus"].split(","))


@pytest.mark.parametrize("amount", ["2", 2, "2000m"])  # any quantity form Kubernetes reads
def test_asking_for_more_gpus_than_exist_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, amount: object
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    exp = experiment("too-many", PUSH, maxTrialCount=1, parallelTrialCount=1)
    container = exp.spec.trial_template.trial_spec["spec"]["template"]["spec"]["containers"][0]  # type: ignore[union-attr,index]
    container["resources"] = {"limits": {"nvidia.com/gpu": amount}}
    with LocalSession(tmp_path / "work") as session:
        with pytest.raises(ValidationError, match="asks for 2 GPUs; this machine has 1 GPU"):
            run(session, exp)
        # Not left Running: Failed, with the reason.
        stored = session.store.get(Experiment, "default", "too-many")
        assert conditions(stored)[-1] == "Failed"
        assert "asks for 2 GPUs" in (stored.status.conditions[-1].message or "")  # type: ignore[union-attr,index]


def with_run_spec(exp: Experiment, run_spec: dict[str, Any]) -> Experiment:
    template = exp.spec.trial_template  # type: ignore[union-attr]
    template.trial_spec = run_spec  # type: ignore[union-attr]
    return exp


POD = {"spec": {"containers": [{"name": "main", "image": "x", "command": ["python", "${trialParameters.x}"]}]}}


@pytest.mark.parametrize(
    ("run_spec", "field", "message"),
    [
        (
            {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "spec": {"templates": [{"container": {}}]}},
            "spec.trialTemplate.trialSpec.kind",
            "local mode cannot run an Argo Workflow",
        ),
        (
            {"apiVersion": "tekton.dev/v1beta1", "kind": "PipelineRun", "spec": {"params": [{"name": "x"}]}},
            "spec.trialTemplate.trialSpec.kind",
            "local mode cannot run a Tekton PipelineRun",
        ),
        (
            {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "spec": {"trainer": {"args": ["x"]}}},
            "spec.trialTemplate.trialSpec.kind",
            "local mode cannot run a Kubeflow Trainer TrainJob",
        ),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "spec": {
                    "template": {
                        "spec": {"containers": [{"name": "main", "image": "x", "args": ["--x=${trialParameters.x}"]}]}
                    }
                },
            },
            "spec.trialTemplate.trialSpec.spec.template.spec.containers[0].command",
            "it has none (a cluster would run the image's ENTRYPOINT",
        ),
        (
            {
                "apiVersion": "kubeflow.org/v1",
                "kind": "PyTorchJob",
                "spec": {
                    "pytorchReplicaSpecs": {
                        "Master": {
                            "template": {
                                "spec": {"containers": [{"name": "pytorch", "command": ["${trialParameters.x}"]}]}
                            }
                        }
                    }
                },
            },
            "spec.trialTemplate.primaryContainerName",
            "no container 'main' in the pod templates of the trial's PyTorchJob (containers: pytorch)",
        ),
    ],
    ids=["argo", "tekton", "trainjob", "no-command", "no-primary"],
)
def test_trials_local_mode_cannot_run_are_refused_before_anything_is_stored(
    session: LocalSession, run_spec: dict[str, Any], field: str, message: str
) -> None:
    exp = with_run_spec(experiment("elsewhere", PUSH), run_spec)
    with pytest.raises(ValidationError) as raised:
        backend.prepare(exp, "default")
    assert raised.value.field == field
    assert message in raised.value.reason
    assert session.store.list_experiments("default") == []


def test_config_map_templates_are_refused_with_what_to_do(session: LocalSession) -> None:
    exp = experiment("from-cm", PUSH)
    template = exp.spec.trial_template  # type: ignore[union-attr]
    template.trial_spec = None  # type: ignore[union-attr]
    template.config_map = ConfigMapSource(  # type: ignore[union-attr]
        config_map_name="trial-templates", config_map_namespace="kubeflow", template_path="job.yaml"
    )
    with pytest.raises(ValidationError, match="local mode reads no ConfigMaps: put the trial template under"):
        backend.prepare(exp, "default")
    assert session.store.list_experiments("default") == []


def test_a_suggester_refusal_fails_the_experiment_with_its_reason(
    session: LocalSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: object, request: object) -> object:
        raise ValidationError("spec.algorithm.algorithmSettings", "the service refused")

    monkeypatch.setattr(Suggester, "suggest", refuse)
    done = run(session, experiment("refused", PUSH))
    assert conditions(done)[-1] == "Failed"
    suggestion = session.store.get(Suggestion, "default", "refused", experiment="refused")
    assert "the service refused" in (suggestion.status.conditions[-1].message or "")  # type: ignore[union-attr,index]


def test_invalid_experiments_are_rejected_before_anything_runs(session: LocalSession) -> None:
    bad = experiment("bad", PUSH, parallelTrialCount=0)
    with pytest.raises(ValidationError, match="parallelTrialCount"):
        backend.prepare(bad, "default")
    file_kind = experiment("file", PUSH, collector="File")
    with pytest.raises(ValidationError, match="spec.metricsCollectorSpec.collector.kind"):
        backend.prepare(file_kind, "default")
    custom = experiment("custom", PUSH, collector="Custom")
    custom.spec.metrics_collector_spec.collector.custom_collector = {"name": "c", "image": "x"}  # type: ignore[union-attr]
    with pytest.raises(ValidationError, match="local mode runs Push and StdOut"):
        backend.prepare(custom, "default")
    assert session.store.list_experiments("default") == []


def test_python_in_trial_commands_is_this_interpreter(session: LocalSession) -> None:
    assert (session.bin_dir / "python").resolve() == Path(sys.executable).resolve()


def test_stop_terminates_the_trial_processes(session: LocalSession) -> None:
    marker = "import time; time.sleep(600)  # stop-test"
    exp = experiment("long", marker, maxTrialCount=1, parallelTrialCount=1)
    stop = threading.Event()
    threading.Timer(1.5, stop.set).start()
    interrupted = run(session, exp, stop=stop)
    assert "Succeeded" not in conditions(interrupted)
    assert _processes_running("stop-test") == []  # the process group was terminated, not left behind


def _processes_running(needle: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if needle.encode() in cmdline.read_bytes() and int(cmdline.parent.name) != os.getpid():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found
