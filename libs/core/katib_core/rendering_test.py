import random

import pytest

from katib_core import constants, rendering, testing
from katib_core.errors import ValidationError
from katib_core.models import ParameterAssignment, TrialAssignment


def test_trial_names_use_katibs_alphabet_and_avoid_taken_ones() -> None:
    rng = random.Random(1)
    first = rendering.new_trial_name("exp", taken=set(), rng=random.Random(1))
    again = rendering.new_trial_name("exp", taken={first}, rng=rng)
    assert first.startswith("exp-")
    assert len(first) == len("exp-") + 8
    assert set(first[4:]) <= set(rendering.NAME_ALPHABET)
    assert again != first


def test_build_trial_copies_the_experiment_and_renders_the_job() -> None:
    experiment = testing.experiment(max_trials=3)
    assert experiment.metadata is not None
    experiment.metadata.labels = {"team": "a"}
    assignment = TrialAssignment(
        name="exp-abc", parameter_assignments=[ParameterAssignment(name="lr", value="0.05")], labels={"s": "1"}
    )
    trial = rendering.build_trial(experiment, assignment)
    assert trial.metadata is not None
    assert trial.spec is not None
    assert trial.metadata.labels == {"team": "a", constants.EXPERIMENT_LABEL: "exp", "s": "1"}
    assert trial.metadata.finalizers == [constants.CLEAN_METRICS_FINALIZER]
    assert trial.metadata.owner_references == [
        {
            "apiVersion": constants.API_VERSION,
            "kind": "Experiment",
            "name": "exp",
            "uid": "uid-exp",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    run = trial.spec.run_spec or {}
    assert run["metadata"] == {"name": "exp-abc", "namespace": "ns"}
    container = run["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][-1] == "print('lr=0.05')"
    assert container["env"] == [{"name": "KATIB_TRIAL_NAME", "value": "exp-abc"}]
    assert trial.spec.primary_container_name == "training-container"
    assert trial.spec.retain_run is False
    assert trial.spec.labels == {"s": "1"}


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("${trialSpec.Name}", "exp-abc"),
        ("${trialSpec.Namespace}", "ns"),
        ("${trialSpec.Kind}", "Job"),
        ("${trialSpec.APIVersion}", "batch/v1"),
        ("${trialSpec.Labels[app]}", "demo"),
        ("${trialSpec.Annotations[note]}", "x"),
    ],
)
def test_metadata_references(reference: str, expected: str) -> None:
    template = testing.job_template(["echo", "${trialParameters.meta}"])
    template["metadata"] = {"labels": {"app": "demo"}, "annotations": {"note": "x"}}
    raw = testing.experiment_dict(template=template)
    raw["spec"]["trialTemplate"]["trialParameters"].append({"name": "meta", "reference": reference})
    experiment = testing.experiment().from_api(raw)
    run = rendering.render_run_spec(
        experiment,
        template,
        trial_name="exp-abc",
        namespace="ns",
        assignments=[ParameterAssignment(name="lr", value="1")],
    )
    assert run["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", expected]


def test_values_with_quotes_cannot_break_the_document() -> None:
    experiment = testing.experiment()
    template = testing.job_template(["echo", '"${trialParameters.lr}"'])
    run = rendering.render_run_spec(
        experiment, template, trial_name="t", namespace="ns", assignments=[ParameterAssignment(name="lr", value='a"}b')]
    )
    assert run["spec"]["template"]["spec"]["containers"][0]["command"][1] == '"a"}b"'


@pytest.mark.parametrize("reference", ["nope", "${trialSpec.Labels[missing]}", "${trialSpec.Other}"])
def test_unresolvable_references_are_errors(reference: str) -> None:
    raw = testing.experiment_dict()
    raw["spec"]["trialTemplate"]["trialParameters"].append({"name": "x", "reference": reference})
    experiment = testing.experiment().from_api(raw)
    with pytest.raises(ValidationError):
        rendering.build_trial(
            experiment, TrialAssignment(name="t", parameter_assignments=[ParameterAssignment(name="lr", value="1")])
        )


def test_a_trial_job_and_its_pods_say_which_trial_they_run() -> None:
    run_spec = testing.job_template()
    run_spec["metadata"] = {"name": "t", "labels": {"team": "a", constants.EXPERIMENT_LABEL: "kept"}}
    job = rendering.job_object(run_spec, trial_name="t", trial_namespace="ns", experiment="exp")
    assert job["metadata"] == {
        "name": "t",
        "namespace": "ns",
        "labels": {constants.TRIAL_LABEL: "t", constants.EXPERIMENT_LABEL: "kept", "team": "a"},
    }
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert pod_labels == {constants.TRIAL_LABEL: "t", constants.EXPERIMENT_LABEL: "exp"}
    assert run_spec["metadata"]["labels"] == {"team": "a", constants.EXPERIMENT_LABEL: "kept"}  # untouched
    assert "metadata" not in run_spec["spec"]["template"]


def test_a_job_kind_of_unknown_shape_gets_labels_on_the_job_only() -> None:
    run_spec = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "t"}, "spec": {}}
    job = rendering.job_object(run_spec, trial_name="t", trial_namespace="ns", experiment=None)
    assert job["metadata"]["labels"] == {constants.TRIAL_LABEL: "t"}
    assert job["spec"] == {}
