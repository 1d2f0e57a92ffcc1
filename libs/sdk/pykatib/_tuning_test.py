import json
import re
from json import dumps
from typing import Any

import pytest

from katib_core.errors import ValidationError
from pykatib import _tuning, search


def objective(parameters):  # type: ignore[no-untyped-def]
    import pykatib as katib

    katib.report_metrics({"result": float(parameters["a"]) * 0.1, "loss": 0.5})


def build(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "name": "tune-experiment",
        "namespace": "kubeflow",
        "objective": objective,
        "parameters": {
            "a": search.int(10, 20),
            "b": search.double(0.1, 0.2),
            "c": search.categorical(["x", "y"]),
            "fixed": 5,
        },
        "objective_metric_name": "result",
        "additional_metric_names": ["loss"],
        "max_trial_count": 12,
        "resources_per_trial": {"gpu": "2"},
        "metrics_collector_config": {"kind": "Push"},
    }
    args.update(overrides)
    return _tuning.build_experiment(**args).to_api()


def container(experiment: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][
        0
    ]
    return result


def test_the_compact_tune_example() -> None:
    experiment = build()
    script = container(experiment)["args"][0]
    container(experiment)["args"] = ["<script>"]
    assert experiment == {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "tune-experiment", "namespace": "kubeflow"},
        "spec": {
            "algorithm": {"algorithmName": "random"},
            "maxTrialCount": 12,
            "metricsCollectorSpec": {"collector": {"kind": "Push"}},
            "objective": {"additionalMetricNames": ["loss"], "objectiveMetricName": "result", "type": "maximize"},
            "parameters": [
                {"feasibleSpace": {"max": "20", "min": "10"}, "name": "a", "parameterType": "int"},
                {"feasibleSpace": {"max": "0.2", "min": "0.1"}, "name": "b", "parameterType": "double"},
                {"feasibleSpace": {"list": ["x", "y"]}, "name": "c", "parameterType": "categorical"},
            ],
            "trialTemplate": {
                "primaryContainerName": "training-container",
                "retain": False,
                "trialParameters": [{"name": p, "reference": p} for p in "abc"],
                "trialSpec": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {
                        "template": {
                            "metadata": {"annotations": {"sidecar.istio.io/inject": "false"}},
                            "spec": {
                                "containers": [
                                    {
                                        "name": "training-container",
                                        "image": _tuning.BASE_IMAGE_PYTORCH,
                                        "command": ["bash", "-c"],
                                        "args": ["<script>"],
                                        "resources": {
                                            "limits": {"nvidia.com/gpu": "2"},
                                            "requests": {"nvidia.com/gpu": "2"},
                                        },
                                    }
                                ],
                                "restartPolicy": "Never",
                            },
                        }
                    },
                },
            },
        },
    }
    # Push without packages_to_install: pip runs only if the image lacks pykatib.
    assert script.startswith("\nif ! python3 -c 'import pykatib' >/dev/null 2>&1; then\n")
    assert (
        "pip install --prefer-binary --quiet         --no-warn-script-location "
        "--index-url https://pypi.org/simple pykatib==" in script
    )
    assert (
        # Typed: int and double parameters reach the objective as numbers (docs/sdk.md#typed-parameters).
        "objective({'a': int('${trialParameters.a}'), 'b': float('${trialParameters.b}'), "
        "'c': '${trialParameters.c}', 'fixed': 5})\n" in script
    )
    assert "def objective(parameters):  # type: ignore[no-untyped-def]\n    import pykatib as katib\n" in script
    assert script.endswith('python -u "$program_path/ephemeral_script.py"')


def test_stdout_default_installs_nothing_and_packages_are_installed_as_given() -> None:
    script = container(build(metrics_collector_config={"kind": "StdOut"}))["args"][0]
    assert script.startswith("\nprogram_path=$(mktemp -d)\n")
    script = container(
        build(packages_to_install=["numpy", "pykatib"], pip_index_urls=["https://a/simple", "https://b/simple"])
    )["args"][0]
    assert "--index-url https://a/simple --extra-index-url https://b/simple numpy pykatib\n" in script
    assert "import pykatib' >/dev/null" not in script


def test_push_trials_of_a_backend_that_provides_pykatib_probe_and_install_nothing() -> None:
    """Local mode's trials import pykatib from the runner's environment: no probe process, no pip."""
    script = container(build(trials_have_pykatib=True))["args"][0]
    assert script.startswith("\nprogram_path=$(mktemp -d)\n")
    assert "pip" not in script
    explicit = container(build(trials_have_pykatib=True, packages_to_install=["numpy"]))["args"][0]
    assert "--prefer-binary" in explicit
    assert "numpy" in explicit  # asked for explicitly: still installed


def test_options_map_to_fields() -> None:
    experiment = build(
        objective_goal=0.9,
        objective_type="minimize",
        algorithm_name="tpe",
        algorithm_settings={"random_state": 10},
        parallel_trial_count=3,
        max_failed_trial_count=2,
        retain_trials=True,
        env_per_trial={"A": 1},
        resources_per_trial={"CPU": "1", "memory": "1Gi"},
        trial_active_deadline_seconds=60,
        base_image="python:3.11",
    )
    spec = experiment["spec"]
    assert spec["objective"]["goal"] == 0.9
    assert spec["objective"]["type"] == "minimize"
    assert spec["algorithm"] == {"algorithmName": "tpe", "algorithmSettings": [{"name": "random_state", "value": "10"}]}
    assert (spec["parallelTrialCount"], spec["maxFailedTrialCount"], spec["trialTemplate"]["retain"]) == (3, 2, True)
    assert spec["trialTemplate"]["trialSpec"]["spec"]["activeDeadlineSeconds"] == 60
    c = container(experiment)
    assert c["env"] == [{"name": "A", "value": "1"}]
    assert c["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    assert c["image"] == "python:3.11"


def test_env_lists_split_into_env_and_env_from() -> None:
    env = [{"name": "A", "value": "1"}, {"configMapRef": {"name": "cm"}}]
    c = container(build(env_per_trial=env))
    assert c["env"] == [{"name": "A", "value": "1"}]
    assert c["envFrom"] == [{"configMapRef": {"name": "cm"}}]
    with pytest.raises(ValueError, match="Incorrect value for env_per_trial"):
        build(env_per_trial=["A=1"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "Please specify name for the Experiment."),
        ({"objective": None}, "One of the required parameters is None"),
        ({"parameters": {}}, "One of the required parameters is None"),
        ({"objective": lambda a, b: None}, "Invalid args in the Objective function"),
        ({"objective": "not callable"}, "Objective function must be callable"),
    ],
)
def test_upstream_argument_errors(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(**overrides)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "Tune_Experiment"}, "metadata.name"),
        ({"objective_metric_name": None}, "spec.objective.objectiveMetricName"),
        ({"objective_type": "max"}, "spec.objective.type"),
        ({"additional_metric_names": ["result"]}, "spec.objective.additionalMetricNames[0]"),
        ({"parameters": {"a": search.int(20, 10)}}, "spec.parameters[0].feasibleSpace"),
        ({"parameters": {"fixed": 5}}, "spec.parameters"),
        ({"max_trial_count": 0}, "spec.maxTrialCount"),
        ({"metrics_collector_config": {"kind": "File"}}, "metrics_collector_config.kind"),
    ],
)
def test_invalid_specs_fail_before_sending_and_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        build(**overrides)
    assert caught.value.field == field


def test_the_callers_parameters_are_not_modified() -> None:
    spec = search.int(1, 2)
    parameters: dict[str, Any] = {"a": spec, "fixed": 5}
    build(parameters=parameters)
    assert spec.name is None
    assert parameters["a"] is spec
    assert parameters["fixed"] == 5


class TrainerResources:
    """kubeflow-training's TrainerResources, by attribute."""

    def __init__(self, workers: int, procs: int) -> None:
        self.num_workers, self.num_procs_per_worker, self.resources_per_worker = workers, procs, {"gpu": 1}


def test_trainer_resources_make_a_pytorchjob() -> None:
    experiment = build(resources_per_trial=TrainerResources(3, 2))
    template = experiment["spec"]["trialTemplate"]
    assert template["primaryContainerName"] == "pytorch"
    job = template["trialSpec"]
    assert (job["kind"], job["spec"]["nprocPerNode"], job["spec"]["runPolicy"]) == ("PyTorchJob", "2", {})
    assert job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 2
    pod = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 1}
    assert "restartPolicy" not in pod["spec"]
    assert 'torchrun "$program_path/ephemeral_script.py"' in pod["spec"]["containers"][0]["args"][0]


def scale(x: float) -> float:
    return x * 2


def uses_a_module_imported_at_the_top(parameters):  # type: ignore[no-untyped-def]
    print(json.dumps({"result": parameters["a"]}))


def uses_a_helper_of_this_file(parameters):  # type: ignore[no-untyped-def]
    print(scale(float(parameters["a"])))


def uses_an_imported_function(parameters):  # type: ignore[no-untyped-def]
    print(dumps(parameters))


calls = 0  # for mypy: the objective below assigns it as a global


def self_contained(parameters):  # type: ignore[no-untyped-def]
    import math

    global calls  # noqa: PLW0603 - assigned here: defined at run time
    calls = 1

    def square(x: float) -> float:
        return x * x

    values = [square(float(v)) for v in parameters.values() if isinstance(v, str)]
    print(f"result={math.fsum(values) + len(values) + calls}")


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (uses_a_module_imported_at_the_top, "uses 'json', which its trials will not have"),
        (uses_a_module_imported_at_the_top, "Import it inside the function: `import json` as its first line."),
        (uses_a_helper_of_this_file, "uses 'scale'"),
        (uses_a_helper_of_this_file, "Define or import it inside the function."),
        (uses_an_imported_function, "Import it inside the function: `from json import dumps`."),
    ],
)
def test_an_objective_using_names_its_trials_lack_is_refused_before_anything_runs(function: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build(objective=function)


def test_a_self_contained_objective_passes() -> None:
    build(objective=self_contained)
