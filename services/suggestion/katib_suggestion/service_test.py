"""The packaged ``katib-suggestion`` as a separate process, called as Katib's controller calls it.

Requests are written here field by field as Katib's suggestion client fills them (the whole
Experiment and every trial, with its last condition and one value per metric, each call;
``current_request_number`` and ``total_request_number``), not through ``katib_suggest.wire``, so
the test does not share the service's reading of the protocol.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from katib_testsupport.processes import DBManagerProcess, SuggestionProcess, run_suggestion

from katib_api.v1beta1 import api_pb2, api_pb2_grpc
from katib_core import suggestions, testing
from katib_core.constants import TrialConditionType
from katib_core.errors import ValidationError
from katib_core.models import TrialAssignment
from katib_core.suggestions import SuggestionRequest, SuggestionTrial
from katib_suggest import Suggester
from katib_suggest.remote import RemoteSuggester
from pykatib import dbmanager
from pykatib.metric_logs import MetricLogs

SUCCEEDED = api_pb2.TrialStatus.SUCCEEDED
RUNNING = api_pb2.TrialStatus.RUNNING
FAILED = api_pb2.TrialStatus.FAILED


@pytest.fixture(scope="module")
def service() -> Iterator[SuggestionProcess]:
    with SuggestionProcess() as proc:
        yield proc
        assert proc.stop() == 0  # SIGTERM: a clean exit


@pytest.fixture(scope="module")
def channel(service: SuggestionProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(service.address) as ch:
        yield ch


def katib_experiment(
    algorithm: str,
    settings: Sequence[tuple[str, str]] = (),
    *,
    grid: bool = False,
    early_stopping: Sequence[tuple[str, str]] | None = None,
    max_trials: int = 20,
) -> api_pb2.Experiment:
    """``ConvertExperiment``'s output for a two-parameter Experiment minimizing ``loss``."""
    spec = api_pb2.ExperimentSpec(
        algorithm=api_pb2.AlgorithmSpec(
            algorithm_name=algorithm,
            algorithm_settings=[api_pb2.AlgorithmSetting(name=n, value=v) for n, v in settings],
        ),
        objective=api_pb2.ObjectiveSpec(
            type=api_pb2.MINIMIZE, objective_metric_name="loss", additional_metric_names=["accuracy"]
        ),
        parallel_trial_count=3,
        max_trial_count=max_trials,
    )
    lr = api_pb2.FeasibleSpace(min="0.01", max="0.05", step="0.02" if grid else "")
    spec.parameter_specs.parameters.add(name="lr", parameter_type=api_pb2.DOUBLE, feasible_space=lr)
    spec.parameter_specs.parameters.add(
        name="optimizer", parameter_type=api_pb2.CATEGORICAL, feasible_space=api_pb2.FeasibleSpace(list=["sgd", "adam"])
    )
    if early_stopping is not None:
        spec.early_stopping.CopyFrom(
            api_pb2.EarlyStoppingSpec(
                algorithm_name="medianstop",
                algorithm_settings=[api_pb2.EarlyStoppingSetting(name=n, value=v) for n, v in early_stopping],
            )
        )
    return api_pb2.Experiment(name="katib-exp", spec=spec)


def katib_trial(
    name: str,
    assignments: Sequence[api_pb2.ParameterAssignment],
    condition: int,
    loss: str | None = None,
) -> api_pb2.Trial:
    """``ConvertTrials``' output for one trial (times as Katib formats them)."""
    trial = api_pb2.Trial(name=name)
    trial.spec.objective.CopyFrom(
        api_pb2.ObjectiveSpec(type=api_pb2.MINIMIZE, objective_metric_name="loss", additional_metric_names=["accuracy"])
    )
    trial.spec.parameter_assignments.assignments.extend(assignments)
    trial.status.start_time = "2026-01-01T00:00:00Z"
    trial.status.condition = condition  # type: ignore[assignment]
    if loss is not None:
        trial.status.completion_time = "2026-01-01T00:01:00Z"
        trial.status.observation.metrics.add(name="loss", value=loss)
        trial.status.observation.metrics.add(name="accuracy", value="0.5")
    return trial


def get_suggestions(
    channel: grpc.Channel, experiment: api_pb2.Experiment, trials: Sequence[api_pb2.Trial], current: int, total: int
) -> api_pb2.GetSuggestionsReply:
    request = api_pb2.GetSuggestionsRequest(
        experiment=experiment, trials=trials, current_request_number=current, total_request_number=total
    )
    reply: api_pb2.GetSuggestionsReply = api_pb2_grpc.SuggestionStub(channel).GetSuggestions(request, timeout=60)
    return reply


def _key(assignment: api_pb2.GetSuggestionsReply.ParameterAssignments) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((a.name, a.value) for a in assignment.assignments))


def test_health_is_serving_for_every_name_a_probe_uses(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for name in ("", "manager.v1beta1.Suggestion", "api.v1.beta1.Suggestion", "api.v1.beta1.EarlyStopping"):
        reply = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, name


def test_rounds_with_growing_trial_lists(channel: grpc.Channel) -> None:
    experiment = katib_experiment("tpe", [("random_state", "11"), ("n_startup_trials", "3")])
    trials: list[api_pb2.Trial] = []
    seen: set[tuple[tuple[str, str], ...]] = set()
    for batch in range(4):
        reply = get_suggestions(channel, experiment, trials, 3, 3 * (batch + 1))
        assert len(reply.parameter_assignments) == 3
        assert not reply.HasField("algorithm")  # tpe keeps no state in its settings (as Katib's optuna service)
        for assignment in reply.parameter_assignments:
            key = _key(assignment)
            assert key not in seen
            seen.add(key)
            assert {a.name for a in assignment.assignments} == {"lr", "optimizer"}
            assert 0.01 <= float(next(a.value for a in assignment.assignments if a.name == "lr")) <= 0.05
            index = len(trials)
            condition = (SUCCEEDED, RUNNING, FAILED)[index % 3]
            loss = str(index / 10) if condition == SUCCEEDED else None
            trials.append(katib_trial(f"katib-exp-{index:04d}", assignment.assignments, condition, loss))


def test_grid_answers_fewer_only_when_exhausted(channel: grpc.Channel) -> None:
    experiment = katib_experiment("grid", grid=True, max_trials=6)  # lr 0.01, 0.03, 0.05 times 2 optimizers
    first = get_suggestions(channel, experiment, [], 4, 4)
    assert len(first.parameter_assignments) == 4
    trials = [katib_trial(f"g{i}", a.assignments, SUCCEEDED, "1") for i, a in enumerate(first.parameter_assignments)]
    rest = get_suggestions(channel, experiment, trials, 4, 8)
    assert len(rest.parameter_assignments) == 2
    points = {_key(a) for a in (*first.parameter_assignments, *rest.parameter_assignments)}
    assert len(points) == 6
    trials += [
        katib_trial(f"g{4 + i}", a.assignments, SUCCEEDED, "1") for i, a in enumerate(rest.parameter_assignments)
    ]
    assert len(get_suggestions(channel, experiment, trials, 1, 9).parameter_assignments) == 0


@pytest.mark.parametrize(
    ("experiment", "named"),
    [
        (katib_experiment("tpe", [("random_state", "abc")]), "spec.algorithm.algorithmSettings.random_state"),
        (katib_experiment("tpe", [("shuffle", "1")]), "spec.algorithm.algorithmSettings[0].name"),
        (katib_experiment("hillclimb"), "spec.algorithm.algorithmName"),
    ],
)
def test_bad_settings_are_invalid_argument_naming_the_setting(
    channel: grpc.Channel, experiment: api_pb2.Experiment, named: str
) -> None:
    for call in (
        lambda: get_suggestions(channel, experiment, [], 1, 1),
        lambda: api_pb2_grpc.SuggestionStub(channel).ValidateAlgorithmSettings(
            api_pb2.ValidateAlgorithmSettingsRequest(experiment=experiment), timeout=30
        ),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        details = caught.value.details() or ""
        assert details.startswith(f"{named}: ")
        assert "Traceback" not in details


def test_validate_algorithm_settings_accepts_good_ones(channel: grpc.Channel) -> None:
    stub = api_pb2_grpc.SuggestionStub(channel)
    request = api_pb2.ValidateAlgorithmSettingsRequest(experiment=katib_experiment("cmaes", [("sigma", "0.2")]))
    request.experiment.spec.parameter_specs.parameters[1].CopyFrom(
        api_pb2.ParameterSpec(
            name="layers", parameter_type=api_pb2.INT, feasible_space=api_pb2.FeasibleSpace(min="1", max="4")
        )
    )
    assert stub.ValidateAlgorithmSettings(request, timeout=30) == api_pb2.ValidateAlgorithmSettingsReply()


def test_early_stopping_settings_are_validated(channel: grpc.Channel) -> None:
    stub = api_pb2_grpc.EarlyStoppingStub(channel)
    good = api_pb2.EarlyStoppingSpec(
        algorithm_name="medianstop", algorithm_settings=[api_pb2.EarlyStoppingSetting(name="start_step", value="2")]
    )
    stub.ValidateEarlyStoppingSettings(api_pb2.ValidateEarlyStoppingSettingsRequest(early_stopping=good), timeout=30)
    bad = api_pb2.EarlyStoppingSpec(
        algorithm_name="medianstop",
        algorithm_settings=[api_pb2.EarlyStoppingSetting(name="min_trials_required", value="0")],
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.ValidateEarlyStoppingSettings(api_pb2.ValidateEarlyStoppingSettingsRequest(early_stopping=bad), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("spec.earlyStopping.algorithmSettings[0].value: ")


def test_medianstop_rules_from_a_real_db_manager(channel: grpc.Channel, tmp_path: Path) -> None:
    with DBManagerProcess("--db-url", f"sqlite:///{tmp_path}/katib.db") as db:
        logs = MetricLogs(dbmanager.DBManagerClient(dbmanager.open_channel(db.address)))
        # start_step 2: each succeeded trial counts the mean of its first two losses: 1, 2 and 3.
        for name, losses in (
            ("s1", ["0.5", "1.5", "9"]),
            ("s2", ["2", "2"]),
            ("s3", ["3", "3", "0"]),
            ("r1", ["0", "0"]),
        ):
            logs.report_rows(
                name,
                [(f"2026-01-01T00:00:0{i}Z", "loss", value) for i, value in enumerate(losses)],
                key=f"report-{name}",
            )
        experiment = katib_experiment("random", early_stopping=[("start_step", "2")])
        assignment = [api_pb2.ParameterAssignment(name="lr", value="0.02")]
        trials = [katib_trial(n, assignment, SUCCEEDED, "1") for n in ("s1", "s2")]
        trials.append(katib_trial("r1", assignment, RUNNING))
        stub = api_pb2_grpc.EarlyStoppingStub(channel)

        def rules(trials: Sequence[api_pb2.Trial]) -> list[api_pb2.EarlyStoppingRule]:
            request = api_pb2.GetEarlyStoppingRulesRequest(
                experiment=experiment, trials=trials, db_manager_address=db.address
            )
            return list(stub.GetEarlyStoppingRules(request, timeout=60).early_stopping_rules)

        assert rules(trials) == []  # two succeeded trials, three required
        trials.append(katib_trial("s3", assignment, SUCCEEDED, "0"))
        assert rules(trials) == [
            api_pb2.EarlyStoppingRule(name="loss", value="2.0", comparison=api_pb2.GREATER, start_step=2)
        ]
    # The logs of succeeded trials are read once: the DB manager is gone and the answer stands.
    assert rules(trials)[0].value == "2.0"


def test_an_unreachable_db_manager_is_unavailable(tmp_path: Path) -> None:
    with SuggestionProcess("--db-timeout", "1") as proc, grpc.insecure_channel(proc.address) as ch:
        request = api_pb2.GetEarlyStoppingRulesRequest(
            experiment=katib_experiment("random", early_stopping=[]),
            trials=[katib_trial("s1", [], SUCCEEDED, "1")],
            db_manager_address=f"127.0.0.1:{_free_port()}",
        )
        with pytest.raises(grpc.RpcError) as caught:
            api_pb2_grpc.EarlyStoppingStub(ch).GetEarlyStoppingRules(request, timeout=60)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "GetObservationLog(s1, loss)" in (caught.value.details() or "")


def test_internal_errors_carry_a_message_not_a_traceback(service: SuggestionProcess, channel: grpc.Channel) -> None:
    # The suggestion service itself as the "DB manager": GetObservationLog is UNIMPLEMENTED there.
    request = api_pb2.GetEarlyStoppingRulesRequest(
        experiment=katib_experiment("random", early_stopping=[]),
        trials=[katib_trial("s1", [], SUCCEEDED, "1")],
        db_manager_address=service.address,
    )
    with pytest.raises(grpc.RpcError) as caught:
        api_pb2_grpc.EarlyStoppingStub(channel).GetEarlyStoppingRules(request, timeout=60)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    details = caught.value.details() or ""
    assert details.startswith("GetEarlyStoppingRules: StorageError: GetObservationLog(s1, loss): UNIMPLEMENTED")
    assert "Traceback" not in details
    assert "\n" not in details


def test_set_trial_status_without_kubernetes_says_what_it_needs(channel: grpc.Channel) -> None:
    # Marking Trials is tested against the test cluster (tests/e2e/external_suggestion_test.py).
    with pytest.raises(grpc.RpcError) as caught:
        api_pb2_grpc.EarlyStoppingStub(channel).SetTrialStatus(
            api_pb2.SetTrialStatusRequest(trial_name="t"), timeout=30
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "SetTrialStatus(t)" in (caught.value.details() or "")
    assert "--kubeconfig" in (caught.value.details() or "")
    with pytest.raises(grpc.RpcError) as nameless:
        api_pb2_grpc.EarlyStoppingStub(channel).SetTrialStatus(api_pb2.SetTrialStatusRequest(), timeout=30)
    assert nameless.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_remote_suggester_answers_as_the_in_process_one(service: SuggestionProcess) -> None:
    experiment = testing.experiment(
        "remote", algorithm="multivariate-tpe", settings={"random_state": "4", "n_startup_trials": "2"}, max_trials=30
    )
    remote, local = RemoteSuggester(service.address), Suggester()
    issued: list[TrialAssignment] = []
    trials: list[SuggestionTrial] = []
    try:
        for _ in range(4):
            request = SuggestionRequest(
                experiment, tuple(trials), tuple(issued), 2, key=suggestions.experiment_key(experiment)
            )
            expected, got = local.suggest(request), remote.suggest(request)
            assert got == expected
            for assignment in got.assignments:
                name = f"remote-{len(issued)}"
                issued.append(TrialAssignment(name=name, parameter_assignments=list(assignment)))
                pairs = tuple((a.name or "", a.value or "") for a in assignment)
                loss = str(abs(float(pairs[0][1]) - 0.03))
                trials.append(SuggestionTrial(name, pairs, TrialConditionType.SUCCEEDED, (("loss", loss),)))
    finally:
        remote.close()


def test_remote_suggester_raises_our_validation_error(service: SuggestionProcess) -> None:
    experiment = testing.experiment("bad", algorithm="tpe", settings={"random_state": "-3"})
    remote = RemoteSuggester(service.address)
    try:
        with pytest.raises(ValidationError) as caught:
            remote.suggest(SuggestionRequest(experiment, (), (), 1))
        assert caught.value.field == "spec.algorithm.algorithmSettings.random_state"
        with pytest.raises(ValidationError, match="random_state"):
            remote.validate(experiment)
    finally:
        remote.close()


def test_remote_suggester_waits_for_a_service_that_is_starting() -> None:
    address = f"127.0.0.1:{_free_port()}"
    experiment = testing.experiment("late", algorithm="random", settings={"random_state": "1"})
    remote = RemoteSuggester(address, timeout=60)
    answers: list[object] = []
    asking = threading.Thread(target=lambda: answers.append(remote.suggest(SuggestionRequest(experiment, (), (), 2))))
    asking.start()
    time.sleep(1.5)  # the first attempts find nothing listening: UNAVAILABLE, retried
    with SuggestionProcess("--listen-address", address):
        asking.join(60)
    remote.close()
    assert len(answers) == 1
    assert answers[0] == Suggester().suggest(SuggestionRequest(experiment, (), (), 2))


def test_bad_flags_exit_2_naming_the_flag() -> None:
    result = run_suggestion("--workers", "0")
    assert result.returncode == 2
    assert result.stderr.strip() == "katib-suggestion: error: --workers: must be at least 1"
    result = run_suggestion(env={"KATIB_SUGGESTION_LISTEN_ADDRESS": "nowhere"})
    assert result.returncode == 2
    assert "KATIB_SUGGESTION_LISTEN_ADDRESS" in result.stderr
    result = run_suggestion("--kubeconfig", "/does/not/exist")
    assert result.returncode == 2
    assert result.stderr.startswith("katib-suggestion: error: --kubeconfig: cannot read /does/not/exist")
    assert len(result.stderr.strip().splitlines()) == 1


def test_sigterm_stops_it_cleanly() -> None:
    proc = SuggestionProcess()
    assert proc.stop() == 0
    assert "Traceback" not in proc.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
