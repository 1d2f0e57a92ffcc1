from typing import Any

import pytest

from katib_core import defaulting
from katib_core.models import Experiment


def experiment(**spec: Any) -> Experiment:
    return Experiment.from_api({"metadata": {"name": "e"}, "spec": spec})


def test_counts_and_resume_policy() -> None:
    spec = defaulting.default_experiment(experiment()).spec
    assert spec is not None
    assert spec.parallel_trial_count == 3
    assert spec.resume_policy == "Never"
    kept = defaulting.default_experiment(experiment(parallelTrialCount=1, resumePolicy="LongRunning")).spec
    assert kept is not None
    assert (kept.parallel_trial_count, kept.resume_policy) == (1, "LongRunning")


@pytest.mark.parametrize(("kind", "strategy"), [("minimize", "min"), ("maximize", "max"), ("", "latest")])
def test_metric_strategies_follow_the_objective(kind: str, strategy: str) -> None:
    objective = {"type": kind, "objectiveMetricName": "loss", "additionalMetricNames": ["acc", "f1"]}
    out = defaulting.default_experiment(experiment(objective=objective)).to_api()["spec"]["objective"]
    assert out["metricStrategies"] == [{"name": n, "value": strategy} for n in ("loss", "acc", "f1")]


def test_existing_strategies_are_kept() -> None:
    objective = {
        "type": "maximize",
        "objectiveMetricName": "acc",
        "additionalMetricNames": ["loss"],
        "metricStrategies": [{"name": "loss", "value": "latest"}],
    }
    out = defaulting.default_experiment(experiment(objective=objective)).to_api()["spec"]["objective"]
    assert out["metricStrategies"] == [{"name": "loss", "value": "latest"}, {"name": "acc", "value": "max"}]


@pytest.mark.parametrize(
    ("kind", "success", "labels"),
    [
        ("Job", '"Complete"', None),
        ("PyTorchJob", '"Succeeded"', {"training.kubeflow.org/job-role": "master"}),
        ("TFJob", '"Succeeded"', {"training.kubeflow.org/job-role": "master"}),
        (
            "TrainJob",
            '"Complete"',
            {"jobset.sigs.k8s.io/replicatedjob-name": "node", "batch.kubernetes.io/job-completion-index": "0"},
        ),
    ],
)
def test_trial_template_conditions_by_job_kind(kind: str, success: str, labels: dict[str, str] | None) -> None:
    template = {"trialSpec": {"apiVersion": "batch/v1", "kind": kind}}
    out = defaulting.default_experiment(experiment(trialTemplate=template)).to_api()["spec"]["trialTemplate"]
    assert success in out["successCondition"]
    assert '"Failed"' in out["failureCondition"]
    assert out.get("primaryPodLabels") == labels


def test_unknown_job_kind_and_set_conditions_are_left_alone() -> None:
    template = {"trialSpec": {"kind": "RayJob"}, "successCondition": "x"}
    out = defaulting.default_experiment(experiment(trialTemplate=template)).to_api()["spec"]["trialTemplate"]
    assert out == template


@pytest.mark.parametrize(
    ("collector", "expected"),
    [
        (None, {"collector": {"kind": "StdOut"}}),
        ({"collector": {"kind": "Push"}}, {"collector": {"kind": "Push"}}),
        ({"collector": {"kind": "StdOut"}}, {"collector": {"kind": "StdOut"}}),
        (
            {"collector": {"kind": "File"}},
            {
                "collector": {"kind": "File"},
                "source": {"fileSystemPath": {"kind": "File", "path": "/var/log/katib/metrics.log", "format": "TEXT"}},
            },
        ),
        (
            {"collector": {"kind": "TensorFlowEvent"}},
            {
                "collector": {"kind": "TensorFlowEvent"},
                "source": {"fileSystemPath": {"kind": "Directory", "path": "/var/log/katib/tfevent/"}},
            },
        ),
        (
            {"collector": {"kind": "PrometheusMetric"}},
            {"collector": {"kind": "PrometheusMetric"}, "source": {"httpGet": {"path": "/metrics", "port": 8080}}},
        ),
    ],
)
def test_metrics_collector_defaults(collector: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    spec = {} if collector is None else {"metricsCollectorSpec": collector}
    assert defaulting.default_experiment(experiment(**spec)).to_api()["spec"]["metricsCollectorSpec"] == expected


def test_distribution_defaults_to_uniform() -> None:
    parameters = [
        {"name": "a", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}},
        {
            "name": "b",
            "parameterType": "double",
            "feasibleSpace": {"min": "1", "max": "2", "distribution": "logUniform"},
        },
    ]
    out = defaulting.default_experiment(experiment(parameters=parameters)).to_api()["spec"]["parameters"]
    assert [p["feasibleSpace"]["distribution"] for p in out] == ["uniform", "logUniform"]


def test_defaulting_does_not_mutate_its_input_and_is_idempotent() -> None:
    original = experiment(objective={"type": "minimize", "objectiveMetricName": "loss"})
    before = original.to_api()
    once = defaulting.default_experiment(original)
    assert original.to_api() == before
    assert defaulting.default_experiment(once).to_api() == once.to_api()


def test_unknown_fields_survive() -> None:
    raw = {"metadata": {"name": "e"}, "spec": {"futureField": {"x": 1}, "objective": {"type": "minimize", "y": 2}}}
    out = defaulting.default_experiment(Experiment.from_api(raw)).to_api()
    assert out["spec"]["futureField"] == {"x": 1}
    assert out["spec"]["objective"]["y"] == 2


def test_repair_moves_the_official_sdks_categorical_values() -> None:
    raw = {
        "spec": {
            "parameters": [
                {"name": "a", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "2"}},
                {"name": "c", "parameterType": "categorical", "feasibleSpace": {"distribution": ["x", "y"]}},
            ]
        }
    }
    repaired, moved = defaulting.repair_raw_experiment(raw)
    assert moved == ["spec.parameters[1].feasibleSpace.distribution"]
    assert repaired["spec"]["parameters"][1]["feasibleSpace"] == {"list": ["x", "y"]}
    assert raw["spec"]["parameters"][1]["feasibleSpace"] == {"distribution": ["x", "y"]}
    assert defaulting.repair_raw_experiment(repaired) == (repaired, [])
