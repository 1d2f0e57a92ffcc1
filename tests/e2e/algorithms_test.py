"""hyperband, bayesianoptimization and pbt (in-process) run by the controllers on the test control
plane with real trial processes pushing through a real DB manager: the waits of a rung, the
algorithms' returned state and PBT's names and lineage in the cluster's objects."""

from __future__ import annotations

from typing import Any

from e2e import controllers as c
from katib_core import testing as builders
from katib_dbmanager.server import DBManagerServer
from katib_suggest import pbt
from katib_testcluster.cluster import Cluster

#: Loss smallest at lr = 0.05, better with more epochs.
TRAIN = (
    "import pykatib; lr = float('${trialParameters.lr}'); epochs = int('${trialParameters.epochs}'); "
    "pykatib.report_metrics({'loss': (lr - 0.05) ** 2 + 1 / epochs, 'acc': 1 - lr})"
)
LR = {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.1", "step": "0.001"}}
EPOCHS = {"name": "num-epochs", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "1"}}


def _create(api: Any, namespace: str, name: str, code: str, db: str, **kwargs: Any) -> None:
    body = builders.experiment_dict(name, namespace=namespace, template=c.push_template(db, code), **kwargs)
    del body["metadata"]["uid"]
    body["spec"]["trialTemplate"]["trialParameters"].append({"name": "epochs", "reference": "num-epochs"})
    from kubernetes import client

    client.CustomObjectsApi(api).create_namespaced_custom_object(c.GROUP, c.VERSION, namespace, "experiments", body)


def _values(trial: dict[str, Any]) -> dict[str, str]:
    return {a["name"]: a["value"] for a in trial["spec"]["parameterAssignments"]}


def test_hyperband_bayesianoptimization_and_pbt_run_on_the_cluster(
    k8s_cluster: Cluster, db_manager: DBManagerServer, running_controllers: str
) -> None:
    api, ns, db = k8s_cluster.api_client, running_controllers, db_manager.address
    _create(
        api, ns, "hyperband", TRAIN, db, max_trials=10, parallel=2, algorithm="hyperband",
        settings={"resource_name": "num-epochs", "eta": "2", "r_l": "2"}, parameters=[LR, EPOCHS],
    )  # fmt: skip
    _create(
        api, ns, "bayes", TRAIN, db, max_trials=6, parallel=2, algorithm="bayesianoptimization",
        settings={"n_initial_points": "3", "random_state": "5"}, parameters=[LR, EPOCHS],
    )  # fmt: skip
    _create(
        api, ns, "pbt", TRAIN, db, max_trials=10, parallel=5, algorithm="pbt", objective_type="minimize",
        settings={"suggestion_trial_dir": "/var/log/katib/checkpoints/", "n_population": "5",
                  "truncation_threshold": "0.2"},
        parameters=[LR, EPOCHS], max_failed=3,
    )  # fmt: skip

    hyperband = c.wait_completed(api, ns, "hyperband", timeout=600)
    assert c.reason(hyperband, "Succeeded") == "ExperimentSuggestionEndReached"
    assert hyperband["status"]["trialsSucceeded"] == 5
    record = c.get(api, ns, "suggestions", "hyperband")
    trials = {t["metadata"]["name"]: t for t in c.trials(api, ns, "hyperband")}
    issued = [trials[a["name"]] for a in record["status"]["suggestions"]]
    assert [_values(t)["num-epochs"] for t in issued] == ["1", "1", "2", "2", "2"]
    best = min(issued[:2], key=lambda t: float(t["status"]["observation"]["metrics"][0]["min"]))
    assert _values(issued[2])["lr"] == _values(best)["lr"]  # the first rung's best, promoted
    state = {s["name"]: s["value"] for s in record["status"]["algorithmSettings"]}
    assert state["current_s"] == "-1"  # Katib's finished state, kept in the Suggestion's status

    bayes = c.wait_completed(api, ns, "bayes", timeout=600)
    assert c.reason(bayes, "Succeeded") == "ExperimentMaxTrialsReached"
    assert bayes["status"]["trialsSucceeded"] == 6
    lrs = [_values(t)["lr"] for t in c.trials(api, ns, "bayes")]
    assert len(set(lrs)) == 6

    population = c.wait_completed(api, ns, "pbt", timeout=600)
    assert c.reason(population, "Succeeded") == "ExperimentMaxTrialsReached"
    members = c.trials(api, ns, "pbt")
    generation = {t["metadata"]["name"]: t["metadata"]["labels"].get(pbt.GENERATION_LABEL) for t in members}
    assert sorted(generation.values()) == ["0"] * 5 + ["1"] * 5
    for trial in members:
        labels = trial["metadata"]["labels"]
        if labels[pbt.GENERATION_LABEL] == "1":
            assert generation[labels[pbt.PARENT_LABEL]] == "0"
