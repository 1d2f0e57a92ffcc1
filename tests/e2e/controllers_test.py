"""The experiment and trial controllers on the real test control plane, with real training processes
pushing through a real DB manager on MariaDB (no mocks). Waits are generous; nothing asserts on time."""

from __future__ import annotations

import re
import time
from pathlib import Path

from kubernetes import client

from e2e import controllers as c
from katib_dbmanager.server import DBManagerServer
from katib_dbmanager.storage import testing as storage_testing
from katib_testcluster import polling
from katib_testcluster.cluster import Cluster

# Training code: loss is smallest at lr = 0.05; also reports an additional metric.
PUSH = (
    "import pykatib; lr = float('${trialParameters.lr}'); "
    "pykatib.report_metrics({'loss': (lr - 0.05) ** 2, 'acc': 1 - lr})"
)


def test_push_experiment_runs_to_completion(
    k8s_cluster: Cluster, db_manager: DBManagerServer, running_controllers: str
) -> None:
    api, ns = k8s_cluster.api_client, running_controllers
    template = c.push_template(db_manager.address, PUSH)
    c.create_experiment(api, ns, "push", max_trials=6, parallel=3, algorithm="tpe", template=template)
    experiment = c.wait_completed(api, ns, "push")
    assert c.conditions(experiment) == {"Created": "True", "Running": "False", "Succeeded": "True"}
    assert c.reason(experiment, "Succeeded") == "ExperimentMaxTrialsReached"
    status = experiment["status"]
    assert (status["trials"], status["trialsSucceeded"]) == (6, 6)
    trials = c.trials(api, ns, "push")
    assert len(trials) == 6
    losses = {}
    for trial in trials:
        assert c.conditions(trial) == {"Created": "True", "Running": "False", "Succeeded": "True"}
        metrics = {m["name"]: m for m in trial["status"]["observation"]["metrics"]}
        assert list(metrics) == ["loss", "acc"]
        name = trial["metadata"]["name"]
        stored = [v for _, metric, v in c.metric_logs(db_manager.address, name) if metric == "loss"]
        assert stored == [metrics["loss"]["latest"]]  # exactly one push per trial, kept as its original string
        losses[name] = float(metrics["loss"]["min"])
    optimal = status["currentOptimalTrial"]
    assert optimal["bestTrialName"] == min(losses, key=lambda n: losses[n])
    assert optimal["observation"]["metrics"][0]["name"] == "loss"
    assert optimal["parameterAssignments"][0]["name"] == "lr"
    record = c.get(api, ns, "suggestions", "push")
    assert sorted(a["name"] for a in record["status"]["suggestions"]) == sorted(losses)
    assert c.conditions(record)["Succeeded"] == "True"  # resumePolicy Never: the algorithm is released
    events = client.CoreV1Api(api).list_namespaced_event(ns).items
    reasons = {e.reason for e in events if e.involved_object.kind == "Trial"}
    assert {"JobCreated", "JobRunning", "JobSucceeded", "JobDeleted"} <= reasons


def test_a_trial_that_never_reports_is_metrics_unavailable(
    k8s_cluster: Cluster, db_manager: DBManagerServer, running_controllers: str
) -> None:
    api, ns = k8s_cluster.api_client, running_controllers
    template = c.push_template(db_manager.address, "print('trained, reported nothing')")
    c.create_experiment(api, ns, "silent", max_trials=2, parallel=2, max_failed=5, template=template)
    experiment = c.wait_completed(api, ns, "silent")
    assert c.reason(experiment, "Succeeded") == "ExperimentMaxTrialsReached"  # MU counts as completed
    assert experiment["status"]["trialMetricsUnavailable"] == 2
    assert "currentOptimalTrial" not in experiment["status"] or not experiment["status"]["currentOptimalTrial"]
    for trial in c.trials(api, ns, "silent"):
        held = c.conditions(trial)
        assert held["MetricsUnavailable"] == "True"
        assert held["Running"] == "False"
        assert "observation" not in trial["status"]
        sentinel = c.metric_logs(db_manager.address, trial["metadata"]["name"])
        assert sentinel == [("0001-01-01T00:00:00Z", "loss", "unavailable")]


def test_failed_trials_fail_the_experiment_at_max_failed(
    k8s_cluster: Cluster, db_manager: DBManagerServer, running_controllers: str
) -> None:
    api, ns = k8s_cluster.api_client, running_controllers
    template = c.push_template(db_manager.address, PUSH + "; raise SystemExit(3)")
    c.create_experiment(api, ns, "failing", max_trials=6, parallel=1, max_failed=2, template=template)
    experiment = c.wait_completed(api, ns, "failing")
    assert c.conditions(experiment)["Failed"] == "True"
    assert c.reason(experiment, "Failed") == "ExperimentFailed"
    trials = c.wait_settled(api, ns, "failing")
    assert len(trials) == 2  # parallel 1: the third is never created
    for trial in trials:
        assert c.conditions(trial)["Failed"] == "True"  # pushed metrics do not save a failed job
        assert (c.reason(trial, "Failed") or "").startswith("TrialFailed. Job reason: ")


def test_reaching_the_goal_ends_the_experiment_early(
    k8s_cluster: Cluster, db_manager: DBManagerServer, running_controllers: str
) -> None:
    api, ns = k8s_cluster.api_client, running_controllers
    template = c.push_template(db_manager.address, "import pykatib; pykatib.report_metrics({'loss': 0.001})")
    c.create_experiment(api, ns, "goal", max_trials=20, parallel=1, goal=0.01, template=template)
    experiment = c.wait_completed(api, ns, "goal")
    assert c.reason(experiment, "Succeeded") == "ExperimentGoalReached"
    assert len(c.wait_settled(api, ns, "goal")) < 20


def test_stdout_experiment_waits_for_its_collector(
    k8s_cluster: Cluster, db_manager: DBManagerServer, running_controllers: str
) -> None:
    """Pull mode without the sidecar: the test plays the collector, feeding the DB manager what the pod printed."""
    api, ns = k8s_cluster.api_client, running_controllers
    template = c.push_template(db_manager.address, "print('loss=${trialParameters.lr}')")
    c.create_experiment(api, ns, "stdout", max_trials=2, parallel=2, kind="StdOut", template=template)
    core = client.CoreV1Api(api)
    reported: set[str] = set()

    def collect() -> bool:
        for trial in c.trials(api, ns, "stdout"):
            name = trial["metadata"]["name"]
            if name in reported:
                continue
            job = client.BatchV1Api(api).read_namespaced_job(name, ns)
            held = (job.status.conditions if job.status else None) or []
            if not any(x.type == "Complete" and x.status == "True" for x in held):
                continue
            assert c.conditions(trial).get("Succeeded") != "True"  # pull mode waits for its collector
            meta = core.list_namespaced_pod(ns, label_selector=f"job-name={name}").items[0].metadata
            assert meta is not None
            value = re.search(r"loss=(\S+)", k8s_cluster.pod_log(ns, str(meta.name)))
            assert value is not None
            c.report(db_manager.address, name, [("0001-01-01T00:00:00Z", "loss", value.group(1))])
            reported.add(name)
        return len(reported) == 2

    polling.wait_until(collect, timeout=300, what="both StdOut trials to print their loss", interval=0.5)
    experiment = c.wait_completed(api, ns, "stdout")
    assert c.reason(experiment, "Succeeded") == "ExperimentMaxTrialsReached"
    for trial in c.trials(api, ns, "stdout"):
        lr = trial["spec"]["parameterAssignments"][0]["value"]
        assert trial["status"]["observation"]["metrics"][0]["latest"] == lr


def test_deleting_an_experiment_deletes_its_metrics(
    k8s_cluster: Cluster, db_manager: DBManagerServer, running_controllers: str
) -> None:
    api, ns = k8s_cluster.api_client, running_controllers
    template = c.push_template(db_manager.address, PUSH)
    c.create_experiment(api, ns, "doomed", max_trials=2, parallel=2, template=template)
    c.wait_completed(api, ns, "doomed")
    names = [t["metadata"]["name"] for t in c.trials(api, ns, "doomed")]
    assert all(c.metric_logs(db_manager.address, n) for n in names)
    for trial in c.trials(api, ns, "doomed"):
        assert trial["metadata"]["finalizers"] == ["clean-metrics-in-db"]
    client.CustomObjectsApi(api).delete_namespaced_custom_object(
        c.GROUP, c.VERSION, ns, "experiments", "doomed", body=client.V1DeleteOptions(propagation_policy="Foreground")
    )
    polling.wait_until(lambda: not c.trials(api, ns, "doomed"), timeout=120, what="the trials to be deleted")
    assert all(c.metric_logs(db_manager.address, n) == [] for n in names)


def test_a_db_manager_outage_delays_status_and_never_corrupts_it(
    k8s_cluster: Cluster, k8s_namespace: str, tmp_path: Path
) -> None:
    """Trials push, then their DB manager goes down before their jobs end: no trial is concluded
    (above all none MetricsUnavailable) until it is back on the same address; then all succeed."""
    api, ns = k8s_cluster.api_client, k8s_namespace
    release = tmp_path / "release"
    code = PUSH + f"; import os, time\nwhile not os.path.exists({str(release)!r}): time.sleep(0.1)"
    with storage_testing.supply("mysql") as supply:
        server = DBManagerServer(supply.open(), listen_address="127.0.0.1:0").start()
        address = server.address
        try:
            with c.in_process(k8s_cluster, address, ns):
                c.create_experiment(
                    api, ns, "outage", max_trials=2, parallel=2, template=c.push_template(address, code)
                )

                def pushed() -> bool:
                    names = [t["metadata"]["name"] for t in c.trials(api, ns, "outage")]
                    return len(names) == 2 and all(c.metric_logs(address, n) for n in names)

                polling.wait_until(pushed, timeout=300, what="both trials to push", interval=0.5)
                server.stop()
                release.touch()  # the training processes exit 0: their jobs complete
                batch = client.BatchV1Api(api)

                def jobs_complete() -> bool:
                    jobs = batch.list_namespaced_job(ns).items
                    return len(jobs) == 2 and all((j.status.succeeded or 0) == 1 for j in jobs if j.status)

                polling.wait_until(jobs_complete, timeout=300, what="both jobs to complete", interval=0.5)
                time.sleep(5)  # several reconciles fail to read metrics meanwhile
                for trial in c.trials(api, ns, "outage"):
                    assert c.conditions(trial) == {"Created": "True", "Running": "True"}  # delayed, not concluded
                server = DBManagerServer(supply.open(), listen_address=address).start()
                experiment = c.wait_completed(api, ns, "outage")
                assert c.reason(experiment, "Succeeded") == "ExperimentMaxTrialsReached"
                assert experiment["status"]["trialsSucceeded"] == 2
                for trial in c.trials(api, ns, "outage"):
                    metrics = {m["name"]: m for m in trial["status"]["observation"]["metrics"]}
                    rows = c.metric_logs(address, trial["metadata"]["name"])
                    assert [(m, v) for _, m, v in rows if m == "loss"] == [("loss", metrics["loss"]["latest"])]
        finally:
            server.stop()


def test_controllers_killed_mid_experiment_neither_duplicate_nor_lose(
    k8s_cluster: Cluster, db_manager: DBManagerServer, k8s_namespace: str, tmp_path: Path
) -> None:
    """Two experiment-controller replicas (one leads), one trial controller; SIGKILL the leader and the
    trial controller mid-experiment, start a new trial controller: the standby takes over."""
    api, ns, address = k8s_cluster.api_client, k8s_namespace, db_manager.address

    def args(who: str) -> list[str]:
        return c.process_args(k8s_cluster, address, ns, who)

    replicas = {
        who: c.ControllerProcess("katib_experiment_controller", *args(who), log=tmp_path / f"{who}.log")
        for who in ("exp-a", "exp-b")
    }
    trial_controller = c.ControllerProcess("katib_trial_controller", *args("trial-1"), log=tmp_path / "trial-1.log")
    slow_push = "import time; time.sleep(0.5); " + PUSH
    try:
        c.create_experiment(api, ns, "restart", max_trials=8, parallel=2, template=c.push_template(address, slow_push))
        polling.wait_until(lambda: len(c.trials(api, ns, "restart")) >= 3, timeout=300, what="3 trials", interval=0.2)
        leader = holder(api, ns)
        replicas[leader].kill()
        trial_controller.kill()
        trial_controller = c.ControllerProcess("katib_trial_controller", *args("trial-2"), log=tmp_path / "trial-2.log")
        experiment = c.wait_completed(api, ns, "restart", timeout=600)
        trials = c.wait_settled(api, ns, "restart")
        assert c.reason(experiment, "Succeeded") == "ExperimentMaxTrialsReached"
        assert len(trials) == 8
        assert experiment["status"]["trialsSucceeded"] == 8
        record = c.get(api, ns, "suggestions", "restart")
        assert sorted(a["name"] for a in record["status"]["suggestions"]) == sorted(
            t["metadata"]["name"] for t in trials
        )
        for trial in trials:  # each trial's training ran exactly once: one pushed loss
            rows = c.metric_logs(address, trial["metadata"]["name"])
            assert [m for _, m, _ in rows].count("loss") == 1
        standby = next(who for who in replicas if who != leader)
        assert holder(api, ns) == standby
    finally:
        for process in (*replicas.values(), trial_controller):
            process.kill()
        for log in sorted(tmp_path.glob("*.log")):  # shown by pytest when the test failed
            print(f"--- {log.name}", *log.read_text(errors="replace").splitlines()[-40:], sep="\n")


def holder(api: client.ApiClient, namespace: str) -> str:
    lease = client.CoordinationV1Api(api).read_namespaced_lease("katib-experiment-controller", namespace)
    assert lease.spec is not None
    return str(lease.spec.holder_identity)
