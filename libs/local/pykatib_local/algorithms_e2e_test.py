"""hyperband and pbt end to end in local mode: Katib's example Experiments with stand-in training scripts."""

from __future__ import annotations

import textwrap
import threading
from typing import Any

from katib_core import constants
from katib_core.models import Experiment, Suggestion, Trial
from katib_suggest import pbt
from pykatib_local import backend
from pykatib_local.session import LocalSession

#: Katib's mnist.py flags; loss = lr + 1/epoch, printed per epoch (the StdOut collector reads it).
HYPERBAND_TRAINING = """
    import sys
    args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
    lr = float(args["lr"])
    for epoch in range(1, int(args["epochs"]) + 1):
        print(f"epoch {epoch}: loss={lr + 1 / epoch:.6f}", flush=True)
"""

#: Katib's pbt_test.py flags; the accuracy grows with lr.
PBT_TRAINING = """
    import sys
    args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
    print(f"Validation-accuracy={float(args['lr']) * 40:.6f}", flush=True)
"""


def job(command: list[str]) -> dict[str, Any]:
    container = {"name": "training-container", "image": "ignored", "command": command}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {"template": {"spec": {"containers": [container], "restartPolicy": "Never"}}},
    }


def hyperband_example() -> Experiment:
    """Katib's examples/v1beta1/hp-tuning/hyperband.yaml, with maxTrialCount raised past its 5 trials."""
    double = "double"
    return Experiment.from_api(
        {
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Experiment",
            "metadata": {"namespace": "kubeflow", "name": "hyperband"},
            "spec": {
                "parallelTrialCount": 2,
                "maxTrialCount": 10,
                "objective": {"type": "minimize", "goal": 0.001, "objectiveMetricName": "loss"},
                "algorithm": {
                    "algorithmName": "hyperband",
                    "algorithmSettings": [
                        {"name": "resource_name", "value": "num-epochs"},
                        {"name": "eta", "value": "2"},
                        {"name": "r_l", "value": "2"},
                    ],
                },
                "maxFailedTrialCount": 2,
                "parameters": [
                    {"name": "lr", "parameterType": double, "feasibleSpace": {"min": "0.01", "max": "0.05"}},
                    {"name": "momentum", "parameterType": double, "feasibleSpace": {"min": "0.5", "max": "0.9"}},
                    {"name": "num-epochs", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "1"}},
                ],
                "trialTemplate": {
                    "primaryContainerName": "training-container",
                    "trialParameters": [
                        {"name": "learningRate", "reference": "lr"},
                        {"name": "momentum", "reference": "momentum"},
                        {"name": "numberEpochs", "reference": "num-epochs"},
                    ],
                    "trialSpec": job(
                        [
                            "python",
                            "-c",
                            textwrap.dedent(HYPERBAND_TRAINING),
                            "--epochs=${trialParameters.numberEpochs}",
                            "--batch-size=16",
                            "--lr=${trialParameters.learningRate}",
                            "--momentum=${trialParameters.momentum}",
                        ]
                    ),
                },
            },
        }
    )


def pbt_example(trial_spec: dict[str, Any] | None = None) -> Experiment:
    """Katib's examples/v1beta1/hp-tuning/simple-pbt.yaml with two generations of 5 (Katib's allows 3
    failures in 2 trials, which both webhooks refuse); ``trial_spec`` replaces its training Job."""
    return Experiment.from_api(
        {
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Experiment",
            "metadata": {"namespace": "kubeflow", "name": "simple-pbt"},
            "spec": {
                "maxTrialCount": 10,
                "parallelTrialCount": 5,
                "maxFailedTrialCount": 3,
                "objective": {"type": "maximize", "goal": 0.99, "objectiveMetricName": "Validation-accuracy"},
                "algorithm": {
                    "algorithmName": "pbt",
                    "algorithmSettings": [
                        {"name": "suggestion_trial_dir", "value": "/var/log/katib/checkpoints/"},
                        {"name": "n_population", "value": "5"},
                        {"name": "truncation_threshold", "value": "0.2"},
                    ],
                },
                "parameters": [
                    {
                        "name": "lr",
                        "parameterType": "double",
                        "feasibleSpace": {"min": "0.0001", "max": "0.02", "step": "0.0001"},
                    }
                ],
                "trialTemplate": {
                    "primaryContainerName": "training-container",
                    "trialParameters": [{"name": "learningRate", "reference": "lr"}],
                    "trialSpec": trial_spec
                    or job(
                        [
                            "python",
                            "-c",
                            textwrap.dedent(PBT_TRAINING),
                            "--epochs=20",
                            "--lr=${trialParameters.learningRate}",
                            "--checkpoint=/var/log/katib/checkpoints/",
                        ]
                    ),
                },
            },
        }
    )


def run(session: LocalSession, experiment: Experiment) -> tuple[Experiment, list[Trial], Suggestion]:
    created = session.store.create(backend.prepare(experiment, "default"))
    assert created.metadata is not None
    namespace, name = created.metadata.namespace or "", created.metadata.name or ""
    session.run(namespace, name, stop=threading.Event())
    return (
        session.store.get(Experiment, namespace, name),
        session.store.list_trials(namespace, experiment=name),
        session.store.get(Suggestion, namespace, name),
    )


def succeeded_reason(experiment: Experiment) -> str | None:
    conditions = experiment.status.conditions if experiment.status else None
    found = [c for c in conditions or [] if c.type == "Succeeded" and c.status == constants.CONDITION_TRUE]
    return found[0].reason if found else None


def values(trial: Trial) -> dict[str, str]:
    return {a.name or "": a.value or "" for a in (trial.spec.parameter_assignments if trial.spec else None) or []}


def loss(trial: Trial) -> float:
    metrics = trial.status.observation.metrics if trial.status and trial.status.observation else None
    return float(next(m.min for m in metrics or [] if m.name == "loss") or "nan")


def test_katibs_hyperband_example_runs_its_brackets_to_the_end(session: LocalSession) -> None:
    final, trials, suggestion = run(session, hyperband_example())
    assert succeeded_reason(final) == "ExperimentSuggestionEndReached"
    assert final.status is not None
    assert (final.status.trials, final.status.trials_succeeded) == (5, 5)
    by_issue = {t.metadata.name: t for t in trials if t.metadata}
    issued = [by_issue[a.name] for a in (suggestion.status.suggestions if suggestion.status else None) or []]
    assert [values(t)["num-epochs"] for t in issued] == ["1", "1", "2", "2", "2"]  # eta 2, r_l 2: 2@1, 1@2, 2@2
    promoted, first_rung = issued[2], issued[:2]
    best = min(first_rung, key=loss)
    assert (values(promoted)["lr"], values(promoted)["momentum"]) == (values(best)["lr"], values(best)["momentum"])
    assert loss(promoted) < loss(best)  # a second epoch
    settings = {s.name: s.value for s in (suggestion.status.algorithm_settings if suggestion.status else None) or []}
    assert settings["current_s"] == "-1"  # Katib's state: finished
    assert settings["resource_name"] == "num-epochs"


def test_katibs_pbt_example_runs_two_generations_with_lineage(session: LocalSession) -> None:
    final, trials, _ = run(session, pbt_example())
    assert succeeded_reason(final) == "ExperimentMaxTrialsReached"
    assert len(trials) == 10
    generation = {
        t.metadata.name: (t.metadata.labels or {}).get(pbt.GENERATION_LABEL, "") for t in trials if t.metadata
    }
    assert sorted(generation.values()) == ["0"] * 5 + ["1"] * 5
    for trial in trials:
        assert trial.metadata is not None
        assert (trial.metadata.name or "").startswith("simple-pbt-")
        labels = trial.metadata.labels or {}
        if labels[pbt.GENERATION_LABEL] == "1":
            assert generation[labels[pbt.PARENT_LABEL]] == "0"
        else:
            assert pbt.PARENT_LABEL not in labels
