from typing import Any

import pytest

from katib_core import template_validation, validation
from katib_core.errors import ValidationError
from katib_core.models import Experiment


def experiment(**spec: Any) -> Experiment:
    base: dict[str, Any] = {
        "objective": {"type": "maximize", "objectiveMetricName": "acc"},
        "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "0.2"}}],
    }
    base.update(spec)
    return Experiment.from_api({"metadata": {"name": "exp"}, "spec": base})


def param(kind: str, **space: Any) -> list[dict[str, Any]]:
    return [{"name": "p", "parameterType": kind, "feasibleSpace": space}]


def test_a_valid_experiment_passes() -> None:
    validation.check_experiment(experiment())
    validation.check_experiment(experiment(parameters=param("categorical", list=["a"]), maxTrialCount=3))
    validation.check_experiment(experiment(parameters=param("int", min="1", max="1", step="1")))
    validation.check_experiment(experiment(parameters=param("discrete", list=["1", "2.5"])))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"objective": None}, "spec.objective"),
        ({"objective": {"type": "maximise", "objectiveMetricName": "a"}}, "spec.objective.type"),
        ({"objective": {"type": "minimize"}}, "spec.objective.objectiveMetricName"),
        (
            {"objective": {"type": "minimize", "objectiveMetricName": "a", "additionalMetricNames": ["b", "a"]}},
            "spec.objective.additionalMetricNames[1]",
        ),
        ({"parameters": []}, "spec.parameters"),
        ({"parameters": [{"parameterType": "int", "feasibleSpace": {"min": "1"}}]}, "spec.parameters[0].name"),
        ({"parameters": param("float", min="1", max="2")}, "spec.parameters[0].parameterType"),
        ({"parameters": param("int")}, "spec.parameters[0].feasibleSpace"),
        ({"parameters": param("int", min="1.5", max="2")}, "spec.parameters[0].feasibleSpace.min"),
        ({"parameters": param("double", min="0.1", max="x")}, "spec.parameters[0].feasibleSpace.max"),
        ({"parameters": param("double", min="0.1")}, "spec.parameters[0].feasibleSpace.max"),
        ({"parameters": param("double", min="2", max="1")}, "spec.parameters[0].feasibleSpace"),
        ({"parameters": param("double", min="1", max="2", step="0")}, "spec.parameters[0].feasibleSpace.step"),
        ({"parameters": param("double", min="1", max="2", list=["1"])}, "spec.parameters[0].feasibleSpace.list"),
        (
            {"parameters": param("double", min="1", max="2", distribution="gauss")},
            "spec.parameters[0].feasibleSpace.distribution",
        ),
        ({"parameters": param("categorical", distribution="uniform")}, "spec.parameters[0].feasibleSpace.list"),
        ({"parameters": param("categorical", list=["a"], min="1")}, "spec.parameters[0].feasibleSpace.min"),
        ({"parameters": param("discrete", list=["1", "two"])}, "spec.parameters[0].feasibleSpace.list[1]"),
        ({"parameters": param("int", min="1", max="2") * 2}, "spec.parameters[1].name"),
        ({"maxTrialCount": 0}, "spec.maxTrialCount"),
        ({"parallelTrialCount": 0}, "spec.parallelTrialCount"),
        ({"maxFailedTrialCount": -1}, "spec.maxFailedTrialCount"),
        ({"maxTrialCount": 2, "parallelTrialCount": 3}, "spec.parallelTrialCount"),
        ({"maxTrialCount": 2, "maxFailedTrialCount": 3}, "spec.maxFailedTrialCount"),
        ({"nasConfig": {"graphConfig": {"numLayers": 2}}}, "spec.parameters"),
    ],
)
def test_invalid_specs_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.check_experiment(experiment(**changes))
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("exp", True),
        ("a-1", True),
        ("a" * 40, True),
        ("a" * 41, False),
        ("Exp", False),
        ("1exp", False),
        ("exp-", False),
        ("", False),
    ],
)
def test_experiment_names(name: str, ok: bool) -> None:
    if ok:
        assert validation.check_experiment_name(name) == name
    else:
        with pytest.raises(ValidationError, match=r"^metadata\.name: "):
            validation.check_experiment_name(name)


def test_generate_name_is_enough() -> None:
    data = experiment().to_api()
    data["metadata"] = {"generateName": "exp-"}
    validation.check_experiment(Experiment.from_api(data))
    data["metadata"] = {}
    with pytest.raises(ValidationError, match="name or generateName"):
        validation.check_experiment(Experiment.from_api(data))


def test_nas_experiments_need_no_parameters() -> None:
    validation.check_experiment(experiment(parameters=None, nasConfig={"graphConfig": {"numLayers": 2}}))


# -- Katib's whole rule set (validate_experiment) ----------------------------------------------


def full(**changes: Any) -> dict[str, Any]:
    """A complete, defaulted Experiment (Job trial, StdOut), with ``changes`` at dotted paths."""
    data: dict[str, Any] = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "random", "namespace": "kubeflow"},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "acc", "additionalMetricNames": ["loss"]},
            "algorithm": {"algorithmName": "random"},
            "parallelTrialCount": 3,
            "maxTrialCount": 12,
            "maxFailedTrialCount": 3,
            "resumePolicy": "Never",
            "metricsCollectorSpec": {"collector": {"kind": "StdOut"}},
            "parameters": [
                {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.03"}},
                {"name": "opt", "parameterType": "categorical", "feasibleSpace": {"list": ["sgd", "adam"]}},
            ],
            "trialTemplate": {
                "primaryContainerName": "training-container",
                "successCondition": 'status.conditions.#(type=="Complete")#|#(status=="True")#',
                "failureCondition": 'status.conditions.#(type=="Failed")#|#(status=="True")#',
                "trialParameters": [
                    {"name": "learningRate", "reference": "lr"},
                    {"name": "optimizer", "reference": "opt"},
                ],
                "trialSpec": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [
                                    {
                                        "name": "training-container",
                                        "image": "python:3.11",
                                        "command": [
                                            "python",
                                            "train.py",
                                            "--lr=${trialParameters.learningRate}",
                                            "--optimizer=${trialParameters.optimizer}",
                                        ],
                                    }
                                ],
                                "restartPolicy": "Never",
                            }
                        }
                    },
                },
            },
        },
    }
    for path, value in changes.items():
        node = data
        *walk, last = path.split(".")
        for key in walk:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return data


_DELETE = object()
COMMAND = "spec.trialTemplate.trialSpec.spec.template.spec.containers.0.command"


def problems(data: dict[str, Any], **kwargs: Any) -> list[str]:
    return [str(p) for p in validation.experiment_problems(Experiment.from_api(data), **kwargs)]


def test_the_full_rule_set_accepts_a_good_experiment() -> None:
    validation.validate_experiment(Experiment.from_api(full()))
    validation.validate_experiment(
        Experiment.from_api(full(**{"spec.metricsCollectorSpec": {"collector": {"kind": "Push"}}}))
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"metadata.name": "a" * 41}, "metadata.name"),
        ({"metadata.name": "Random"}, "metadata.name"),
        ({"spec.maxTrialCount": 0}, "spec.maxTrialCount"),
        ({"spec.parallelTrialCount": 13}, "spec.parallelTrialCount"),
        ({"spec.maxFailedTrialCount": -1}, "spec.maxFailedTrialCount"),
        ({"spec.objective.type": "max"}, "spec.objective.type"),
        ({"spec.objective.objectiveMetricName": ""}, "spec.objective.objectiveMetricName"),
        ({"spec.objective.additionalMetricNames": ["acc"]}, "spec.objective.additionalMetricNames[0]"),
        ({"spec.algorithm": _DELETE}, "spec.algorithm.algorithmName"),
        ({"spec.algorithm.algorithmName": "enas"}, "spec.algorithm.algorithmName"),
        ({"spec.earlyStopping": {"algorithmName": ""}}, "spec.earlyStopping.algorithmName"),
        ({"spec.earlyStopping": {"algorithmName": "asha"}}, "spec.earlyStopping.algorithmName"),
        ({"spec.resumePolicy": "Always"}, "spec.resumePolicy"),
        ({"spec.trialTemplate": _DELETE}, "spec.trialTemplate"),
        ({"spec.trialTemplate.primaryContainerName": ""}, "spec.trialTemplate.primaryContainerName"),
        ({"spec.trialTemplate.successCondition": ""}, "spec.trialTemplate"),
        ({"spec.trialTemplate.trialParameters": _DELETE}, "spec.trialTemplate.trialParameters"),
        ({"spec.trialTemplate.trialSpec": _DELETE}, "spec.trialTemplate"),
        (
            {"spec.trialTemplate.configMap": {"configMapName": "t", "configMapNamespace": "k", "templatePath": "p"}},
            "spec.trialTemplate",
        ),
        (
            {"spec.trialTemplate.trialParameters.1": {"name": "op{t}", "reference": "opt"}},
            "spec.trialTemplate.trialParameters[1]",
        ),
        (
            {"spec.trialTemplate.trialParameters.1": {"name": "learningRate", "reference": "opt"}},
            "spec.trialTemplate.trialParameters[1].name",
        ),
        (
            {"spec.trialTemplate.trialParameters.1": {"name": "optimizer", "reference": "lr"}},
            "spec.trialTemplate.trialParameters[1].reference",
        ),
        (
            {"spec.trialTemplate.trialParameters.1": {"name": "optimizer", "reference": "momentum"}},
            "spec.trialTemplate.trialParameters[1].reference",
        ),
        ({COMMAND: ["python", "--lr=${trialParameters.learningRate}"]}, "spec.trialTemplate.trialParameters[1].name"),
        (
            {COMMAND: ["${trialParameters.learningRate}", "${trialParameters.optimizer}", "${trialParameters.batch}"]},
            "spec.trialTemplate",
        ),
        ({"spec.trialTemplate.trialSpec.metadata": {"name": "fixed"}}, "spec.trialTemplate"),
        ({"spec.trialTemplate.trialSpec.kind": ""}, "spec.trialTemplate"),
        ({"spec.parameters": []}, "spec.parameters"),
        ({"spec.parameters.0.parameterType": "float"}, "spec.parameters[0].parameterType"),
        ({"spec.parameters.1.feasibleSpace": {"list": ["a"], "max": "1"}}, "spec.parameters[1].feasibleSpace.max"),
        ({"spec.nasConfig": {"graphConfig": {"numLayers": 2}}}, "spec.parameters"),
        ({"spec.metricsCollectorSpec.collector.kind": "None"}, "spec.metricsCollectorSpec.collector.kind"),
        ({"spec.metricsCollectorSpec.collector.kind": "Sidecar"}, "spec.metricsCollectorSpec.collector.kind"),
        ({"spec.metricsCollectorSpec.collector.kind": "PrometheusMetric"}, "spec.metricsCollectorSpec.collector.kind"),
        # What the algorithm's service would refuse is refused here, not at run time.
        (
            {"spec.algorithm": {"algorithmName": "tpe", "algorithmSettings": [{"name": "gamma", "value": "2"}]}},
            "spec.algorithm.algorithmSettings.gamma",
        ),
        (
            {"spec.algorithm.algorithmSettings": [{"name": "eta", "value": "3"}]},
            "spec.algorithm.algorithmSettings[0].name",
        ),
        (
            {"spec.algorithm.algorithmName": "grid", "spec.parameters.0.feasibleSpace.distribution": "normal"},
            "spec.parameters[0].feasibleSpace.distribution",
        ),
        (
            {"spec.parameters.0.feasibleSpace": {"min": "-1", "max": "1", "distribution": "logNormal"}},
            "spec.parameters[0].feasibleSpace.min",
        ),
    ],
)
def test_the_full_rule_set_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(validation.InvalidExperimentError) as caught:
        validation.validate_experiment(Experiment.from_api(full(**changes)))
    assert caught.value.field == field, str(caught.value)
    assert str(caught.value).startswith(f"{field}: ")
    assert isinstance(caught.value, ValidationError)


@pytest.mark.parametrize("distribution", ["uniform", "logUniform", "normal", "logNormal"])
@pytest.mark.parametrize("algorithm", ["random", "tpe"])
def test_katibs_hyperopt_distributions_and_settings_are_admitted(algorithm: str, distribution: str) -> None:
    # Katib's hyperopt-distribution.yaml (random) and tpe.yaml (gamma, prior_weight, n_EI_candidates).
    settings = [{"name": "random_state", "value": "10"}]
    if algorithm == "tpe":
        settings += [{"name": "gamma", "value": "0.25"}, {"name": "prior_weight", "value": "1.0"}]
        settings += [{"name": "n_EI_candidates", "value": "24"}]
    changes = {
        "spec.algorithm": {"algorithmName": algorithm, "algorithmSettings": settings},
        "spec.parameters.0.feasibleSpace": {"min": "0.01", "max": "0.05", "distribution": distribution},
    }
    validation.validate_experiment(Experiment.from_api(full(**changes)))


def test_every_problem_is_reported_at_once() -> None:
    found = problems(full(**{"spec.maxTrialCount": 0, "spec.algorithm.algorithmName": "x", "spec.resumePolicy": "y"}))
    assert [p.split(":")[0] for p in found] == [
        "spec.maxTrialCount",
        "spec.algorithm.algorithmName",
        "spec.resumePolicy",
    ]
    # a broken objective stops the check there, as in Katib
    found = problems(full(**{"spec.objective.type": "", "spec.algorithm.algorithmName": "x"}))
    assert [p.split(":")[0] for p in found] == ["spec.objective.type"]


@pytest.mark.parametrize(
    "reference",
    ["${trialSpec.Name}", "${trialSpec.Namespace}", "${trialSpec.Kind}", "${trialSpec.APIVersion}",
     "${trialSpec.Labels[app]}", "${trialSpec.Annotations[note]}"],
)  # fmt: skip
def test_meta_references_need_no_parameter(reference: str) -> None:
    data = full()
    data["spec"]["trialTemplate"]["trialParameters"].append({"name": "meta", "reference": reference})
    cmd = data["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]["command"]
    cmd.append("--meta=${trialParameters.meta}")
    assert problems(data) == []
    assert not template_validation.is_meta_reference("${trialSpec.Uid}")
    assert not template_validation.is_meta_reference("trialSpec.Name")


MC = "spec.metricsCollectorSpec"


def mc(kind: str, custom: dict[str, Any] | None = None, **source: Any) -> dict[str, Any]:
    """A metricsCollectorSpec of ``kind`` with ``source`` (``path=(kind, path, format)`` builds fileSystemPath)."""
    spec: dict[str, Any] = {"collector": {"kind": kind, **({"customCollector": custom} if custom else {})}}
    if "path" in source:
        path_kind, path, *file_format = source.pop("path")
        source["fileSystemPath"] = {"kind": path_kind, "path": path}
        if file_format:
            source["fileSystemPath"]["format"] = file_format[0]
    if source:
        spec["source"] = source
    return spec


@pytest.mark.parametrize(
    ("collector", "field"),
    [
        (mc("File"), f"{MC}.source.fileSystemPath.path"),
        (mc("File", path=("File", "rel/m.log", "TEXT")), f"{MC}.source.fileSystemPath.path"),
        (mc("File", path=("File", "/m.log", "CSV")), f"{MC}.source.fileSystemPath.format"),
        (mc("File", path=("File", "/m", "JSON"), filter={"metricsFormat": []}), f"{MC}.source.filter"),
        (
            mc("File", path=("File", "/m", "TEXT"), filter={"metricsFormat": ["(a)"]}),
            f"{MC}.source.filter.metricsFormat[0]",
        ),
        (mc("TensorFlowEvent", path=("File", "/tf")), f"{MC}.source.fileSystemPath.path"),
        (mc("TensorFlowEvent", path=("Directory", "/tf", "TEXT")), f"{MC}.source.fileSystemPath.format"),
        (mc("Custom"), f"{MC}.collector.customCollector"),
        (mc("Custom", {"name": "c"}, path=("Invalid", "/x")), f"{MC}.source.fileSystemPath"),
        (mc("PrometheusMetric", httpGet={"port": 0, "path": "/m"}), f"{MC}.source.httpGet.port"),
        (mc("PrometheusMetric", httpGet={"port": "8080", "path": "m"}), f"{MC}.source.httpGet.path"),
    ],
)
def test_collector_rules(collector: dict[str, Any], field: str) -> None:
    settings = validation.ValidationSettings(collector_kinds=frozenset({"File", "TensorFlowEvent", "PrometheusMetric"}))
    found = validation.experiment_problems(Experiment.from_api(full(**{MC: collector})), settings=settings)
    assert found, "accepted"
    assert found[0].field == field, found


@pytest.mark.parametrize(
    "collector",
    [
        mc("Push"),
        mc("StdOut", filter={"metricsFormat": ["broken("]}),  # Push and StdOut are not looked at further (Katib)
        mc("File", path=("File", "/m.json", "JSON")),
        mc("File", path=("File", "/m", "TEXT"), filter={"metricsFormat": [r"(\w+):(\d+)"]}),
        mc("TensorFlowEvent", path=("Directory", "/tf/")),
        mc("Custom", {"name": "c"}),
    ],
)
def test_good_collectors(collector: dict[str, Any]) -> None:
    assert problems(full(**{MC: collector})) == []


def test_a_configured_prometheus_collector_passes() -> None:
    collector = {"collector": {"kind": "PrometheusMetric"}, "source": {"httpGet": {"port": 8080, "path": "/metrics"}}}
    configured = validation.ValidationSettings(collector_kinds=frozenset({"PrometheusMetric"}))
    assert problems(full(**{"spec.metricsCollectorSpec": collector}), settings=configured) == []
    assert (
        "no metrics collector is configured for kind PrometheusMetric"
        in problems(full(**{"spec.metricsCollectorSpec": collector}))[0]
    )


def test_config_map_templates_are_checked_when_given() -> None:
    data = full()
    job = data["spec"]["trialTemplate"].pop("trialSpec")
    data["spec"]["trialTemplate"]["configMap"] = {"configMapName": "t", "configMapNamespace": "k", "templatePath": "p"}
    assert problems(data) == []  # content unknown: only the structure is checked
    assert problems(data, config_map_template=job) == []
    broken = {**job, "metadata": {"namespace": "elsewhere"}}
    assert problems(data, config_map_template=broken) == [
        "spec.trialTemplate: metadata.name and metadata.namespace must be omitted"
    ]
    data["spec"]["trialTemplate"]["configMap"]["templatePath"] = ""
    assert problems(data) == [
        "spec.trialTemplate.configMap: configMapName, configMapNamespace and templatePath are required"
    ]


def test_batch_jobs_must_survive_the_typed_model() -> None:
    def drop_unknown(job: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in job.items() if k in ("apiVersion", "kind", "metadata", "spec")}
        out["spec"] = {k: v for k, v in job["spec"].items() if k != "typo"}
        return out

    assert problems(full(), convert_batch_job=drop_unknown) == []
    found = problems(full(**{"spec.trialTemplate.trialSpec.spec.typo": 1}), convert_batch_job=drop_unknown)
    assert found == ["spec.trialTemplate: is not a valid batch/v1 Job: /spec/typo = 1 is not a Job field"]

    def refuse(job: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("activeDeadlineSeconds: 'test-value' is not an integer")

    assert problems(full(), convert_batch_job=refuse)[0].startswith("spec.trialTemplate: is not a valid batch/v1 Job")
    other = full(
        **{
            "spec.trialTemplate.trialSpec.apiVersion": "kubeflow.org/v1",
            "spec.trialTemplate.trialSpec.kind": "PyTorchJob",
        }
    )
    assert problems(other, convert_batch_job=refuse) == []  # only batch/v1 Jobs are converted


def status(succeeded_reason: str | None, trials: int = 12) -> dict[str, Any]:
    conditions = [{"type": "Created", "status": "True"}]
    if succeeded_reason:
        conditions.append({"type": "Succeeded", "status": "True", "reason": succeeded_reason})
    return {"conditions": conditions, "trials": trials}


@pytest.mark.parametrize(
    ("old_changes", "new_changes", "fields"),
    [
        ({}, {"spec.parallelTrialCount": 5, "spec.maxTrialCount": 20, "spec.maxFailedTrialCount": 5}, []),
        ({}, {"spec.algorithm.algorithmName": "tpe"}, ["spec"]),
        ({}, {"spec.objective.goal": 0.9}, ["spec"]),
        ({}, {"spec.maxTrialCount": 4}, ["spec.maxTrialCount"]),  # no more than the trials already made
        ({"status": status("ExperimentMaxTrialsReached")}, {"spec.maxTrialCount": 20}, ["spec.resumePolicy"]),
        (
            {"status": status("ExperimentMaxTrialsReached"), "spec.resumePolicy": "LongRunning"},
            {"spec.maxTrialCount": 20, "spec.resumePolicy": "LongRunning"},
            [],
        ),
        (
            {"status": status("ExperimentGoalReached"), "spec.resumePolicy": "LongRunning"},
            {"spec.maxTrialCount": 20, "spec.resumePolicy": "LongRunning"},
            ["spec.resumePolicy"],
        ),
        ({"status": status("ExperimentMaxTrialsReached")}, {}, []),  # no spec change: nothing to check
        # a spec the installation no longer accepts, unchanged (a finalizer removed): not checked again
        ({"spec.algorithm.algorithmName": "enas"}, {"spec.algorithm.algorithmName": "enas"}, []),
    ],
)
def test_update_rules(old_changes: dict[str, Any], new_changes: dict[str, Any], fields: list[str]) -> None:
    old_status = old_changes.pop("status", {"trials": 5})
    old = Experiment.from_api({**full(**old_changes), "status": old_status})
    new = Experiment.from_api(full(**new_changes))
    assert [p.field for p in validation.experiment_problems(new, old=old)] == fields


def test_tune_experiments_of_both_sdks_pass_after_defaulting() -> None:
    import json
    from pathlib import Path

    from katib_core import defaulting

    raw = json.loads((Path(__file__).parent / "models/testdata/tune-push-experiment.json").read_text())
    raw["spec"]["parameters"][2]["feasibleSpace"] = {"distribution": ["x", "y"]}  # the official SDK's bug
    container = raw["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["args"] = [
        "python -u - <<EOM\ntrain({'a': '${trialParameters.a}', 'b': '${trialParameters.b}',"
        " 'c': '${trialParameters.c}'})\nEOM"
    ]
    repaired, moved = defaulting.repair_raw_experiment(raw)
    assert moved == ["spec.parameters[2].feasibleSpace.distribution"]
    experiment = defaulting.default_experiment(Experiment.from_api(repaired))
    validation.validate_experiment(experiment)


def test_fields_katib_does_not_define_are_named_with_the_likely_typo() -> None:
    data = full(
        **{"spec.parallelTrialCout": 2, "spec.objective.goals": 0.9, "spec.parameters.0.feasibleSpace.stpe": "1"}
    )
    found = validation.unknown_spec_fields(Experiment.from_api(data))
    assert found == [
        "spec.parallelTrialCout: unknown field; did you mean parallelTrialCount?",
        "spec.parameters[0].feasibleSpace.stpe: unknown field; did you mean step?",
        "spec.objective.goals: unknown field; did you mean goal?",
    ]
    with pytest.raises(ValidationError) as raised:
        validation.check_known_fields(Experiment.from_api(data))
    assert raised.value.field == "spec.parallelTrialCout"
    assert "did you mean parallelTrialCount?" in str(raised.value)
    assert "spec.parameters[0].feasibleSpace.stpe" in str(raised.value)  # every one is listed
    # What Katib defines, including the opaque trial template and metadata's own fields, passes.
    clean = full(**{"metadata.managedFields": [{"manager": "kubectl"}], COMMAND: ["python", "-c", "x"]})
    assert validation.unknown_spec_fields(Experiment.from_api(clean)) == []


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        # Katib v0.19's skopt validator admits these (Katib's bayesian-optimization.yaml sets random_state).
        ({"random_state": "10"}, None),
        ({"base_estimator": "GBRT", "n_initial_points": "0", "acq_func": "EIps", "acq_optimizer": "sampling"}, None),
        ({"base_estimator": "GP", "acq_func": "PIps", "acq_optimizer": "lbfgs"}, None),
        ({"base_estimator": "ET", "acq_func": "LCB", "acq_optimizer": "auto"}, None),
        # ... and refuses these.
        ({"base_estimator": "gp"}, "spec.algorithm.algorithmSettings.base_estimator"),
        ({"n_initial_points": "-1"}, "spec.algorithm.algorithmSettings.n_initial_points"),
        ({"n_initial_points": "1.5"}, "spec.algorithm.algorithmSettings.n_initial_points"),
        ({"acq_func": "UCB"}, "spec.algorithm.algorithmSettings.acq_func"),
        ({"acq_optimizer": "bfgs"}, "spec.algorithm.algorithmSettings.acq_optimizer"),
        ({"random_state": "-1"}, "spec.algorithm.algorithmSettings.random_state"),
        ({"xi": "0.01"}, "spec.algorithm.algorithmSettings[0].name"),
        # Katib admits this, then skopt refuses to build the optimizer: refused here instead.
        ({"base_estimator": "RF", "acq_optimizer": "lbfgs"}, "spec.algorithm.algorithmSettings.acq_optimizer"),
    ],
)
def test_bayesianoptimization_settings_get_katibs_verdict(settings: dict[str, str], field: str | None) -> None:
    algorithm = {
        "algorithmName": "bayesianoptimization",
        "algorithmSettings": [{"name": k, "value": v} for k, v in settings.items()],
    }
    data = full(**{"spec.algorithm": algorithm})
    if field is None:
        validation.validate_experiment(Experiment.from_api(data))
        return
    with pytest.raises(validation.InvalidExperimentError) as caught:
        validation.validate_experiment(Experiment.from_api(data))
    assert caught.value.field == field, str(caught.value)
