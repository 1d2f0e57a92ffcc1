from typing import Any

from katib_api.v1beta1 import api_pb2
from katib_core import suggestions, testing
from katib_core.constants import TrialConditionType
from katib_core.models import (
    AlgorithmSetting,
    EarlyStoppingRule,
    EarlyStoppingSpec,
    ParameterAssignment,
    TrialAssignment,
)
from katib_core.suggestions import SuggestionReply, SuggestionRequest, SuggestionTrial
from katib_suggest import Suggester, wire

PARAMS: list[dict[str, Any]] = [
    {
        "name": "lr",
        "parameterType": "double",
        "feasibleSpace": {"min": "0.001", "max": "0.1", "distribution": "logUniform"},
    },
    {"name": "layers", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "9", "step": "2"}},
    {"name": "opt", "parameterType": "categorical", "feasibleSpace": {"list": ["sgd", "adam"]}},
]


def _assignment(name: str, lr: str) -> TrialAssignment:
    return TrialAssignment(
        name=name,
        parameter_assignments=[
            ParameterAssignment(name="lr", value=lr),
            ParameterAssignment(name="layers", value="3"),
            ParameterAssignment(name="opt", value="sgd"),
        ],
    )


def test_experiment_survives_the_wire_with_what_katib_sends() -> None:
    experiment = testing.experiment(
        algorithm="tpe", settings={"random_state": "3"}, parameters=PARAMS, goal=0.25, objective_type="maximize"
    )
    assert experiment.spec is not None
    experiment.spec.early_stopping = EarlyStoppingSpec.from_api(
        {"algorithmName": "medianstop", "algorithmSettings": [{"name": "start_step", "value": "2"}]}
    )
    message = wire.experiment_to_proto(experiment)
    assert message.spec.objective.type == api_pb2.MAXIMIZE
    assert message.spec.parameter_specs.parameters[0].feasible_space.distribution == api_pb2.LOG_UNIFORM
    assert message.spec.parameter_specs.parameters[2].parameter_type == api_pb2.CATEGORICAL
    back = wire.experiment_from_proto(api_pb2.Experiment.FromString(message.SerializeToString()))
    assert back.metadata is not None
    assert back.metadata.name == "exp"
    assert back.spec is not None
    assert back.spec.algorithm == experiment.spec.algorithm
    assert back.spec.early_stopping == experiment.spec.early_stopping
    assert back.spec.objective is not None
    assert back.spec.objective.goal == 0.25
    assert back.spec.objective.type == "maximize"
    assert back.spec.objective.additional_metric_names == ["acc"]
    assert [p.to_api() for p in back.spec.parameters or []] == PARAMS
    assert (back.spec.max_trial_count, back.spec.parallel_trial_count) == (4, 2)


def test_an_unknown_parameter_type_stays_visible_for_validation() -> None:
    message = api_pb2.Experiment(name="e")
    message.spec.parameter_specs.parameters.add(name="x")
    experiment = wire.experiment_from_proto(message)
    assert experiment.spec is not None
    assert experiment.spec.parameters
    assert experiment.spec.parameters[0].parameter_type == "unknown"


def test_request_round_trip_counts_every_issued_assignment() -> None:
    experiment = testing.experiment(parameters=PARAMS)
    issued = (_assignment("a", "0.01"), _assignment("b", "0.02"), _assignment("c", "0.03"))
    history = (
        SuggestionTrial(
            "a", (("lr", "0.01"), ("layers", "3"), ("opt", "sgd")), TrialConditionType.SUCCEEDED, (("loss", "0.5"),)
        ),
        SuggestionTrial("b", (("lr", "0.02"), ("layers", "3"), ("opt", "sgd")), TrialConditionType.FAILED),
    )
    request = SuggestionRequest(experiment, history, issued, 2, key=suggestions.experiment_key(experiment))
    message = wire.request_to_proto(request)
    assert (message.current_request_number, message.total_request_number) == (2, 5)
    assert [t.status.condition for t in message.trials] == [
        api_pb2.TrialStatus.SUCCEEDED,
        api_pb2.TrialStatus.FAILED,
        api_pb2.TrialStatus.CREATED,  # issued, no Trial yet: what Katib sends for a trial without conditions
    ]
    assert message.trials[0].spec.objective.objective_metric_name == "loss"
    back = wire.request_from_proto(api_pb2.GetSuggestionsRequest.FromString(message.SerializeToString()))
    assert back.count == 2
    assert back.key == "/exp/"
    assert back.issued == issued
    assert back.history[:2] == history
    assert back.history[2].condition == TrialConditionType.CREATED


def test_assignments_katib_left_out_still_count() -> None:
    # Katib drops MetricsUnavailable trials; total_request_number still counts their assignments.
    message = wire.request_to_proto(
        SuggestionRequest(testing.experiment(parameters=PARAMS), (), (_assignment("a", "0.01"),), 1)
    )
    message.total_request_number = 4
    request = wire.request_from_proto(message)
    assert len(request.issued) == 3
    assert [a.name for a in request.issued] == ["a", "", ""]


def test_reply_round_trip_with_labels() -> None:
    experiment = testing.experiment(algorithm="tpe", settings={"random_state": "1"})
    assert experiment.spec is not None
    reply = SuggestionReply(
        assignments=((ParameterAssignment(name="lr", value="0.5"),), (ParameterAssignment(name="lr", value="0.7"),)),
        labels=({"pbt.suggestion.katib.kubeflow.org/generation": "1"}, {}),
    )
    message = wire.reply_to_proto(reply, experiment.spec.algorithm)
    assert not message.HasField("algorithm")  # no state returned: nothing for Katib to keep
    assert dict(message.parameter_assignments[0].labels) == {"pbt.suggestion.katib.kubeflow.org/generation": "1"}
    assert wire.reply_from_proto(message, 2) == reply
    assert not wire.reply_from_proto(message, 3).exhausted


def test_trial_names_and_returned_settings_travel_and_an_empty_answer_may_wait() -> None:
    experiment = testing.experiment(algorithm="hyperband", settings={"eta": "3", "current_s": "2"})
    assert experiment.spec is not None
    reply = SuggestionReply(
        assignments=((ParameterAssignment(name="lr", value="0.5"),),),
        trial_names=("exp-pbt-1",),
        algorithm_settings=(AlgorithmSetting(name="current_s", value="1"),),
    )
    message = wire.reply_to_proto(reply, experiment.spec.algorithm)
    assert message.parameter_assignments[0].trial_name == "exp-pbt-1"
    # Katib's controller keeps what comes back; the request's settings with the algorithm's merged in.
    assert [(s.name, s.value) for s in message.algorithm.algorithm_settings] == [("eta", "3"), ("current_s", "1")]
    back = wire.reply_from_proto(message, 1)
    assert back.trial_names == ("exp-pbt-1",)
    assert not back.exhausted
    empty = api_pb2.GetSuggestionsReply()
    assert wire.reply_from_proto(empty, 2).exhausted
    waiting = wire.reply_from_proto(empty, 2, running=True)
    assert not waiting.exhausted
    assert suggestions.is_idle(waiting, None)
    partial = wire.reply_to_proto(SuggestionReply(assignments=reply.assignments), None)
    assert not wire.reply_from_proto(partial, 2, running=True).exhausted  # a rung of one: more may come
    assert not wire.reply_from_proto(partial, 2).exhausted  # fewer: asked again, the end is an empty answer


def test_rules_round_trip_and_unknown_comparison_is_equal() -> None:
    rules = [EarlyStoppingRule(name="loss", value="0.5", comparison="greater", start_step=4)]
    message = wire.rules_to_proto(rules)
    assert message[0].comparison == api_pb2.GREATER
    assert wire.rules_from_proto(message) == rules
    assert wire.rules_from_proto([api_pb2.EarlyStoppingRule(name="x")])[0].comparison == "equal"


def test_succeeded_trial_names_follow_the_last_condition() -> None:
    trials = [
        api_pb2.Trial(name="a", status=api_pb2.TrialStatus(condition=api_pb2.TrialStatus.SUCCEEDED)),
        api_pb2.Trial(name="b", status=api_pb2.TrialStatus(condition=api_pb2.TrialStatus.EARLYSTOPPED)),
        api_pb2.Trial(name="c"),
    ]
    assert wire.succeeded_trial_names(trials) == ["a"]


def test_the_suggester_answers_the_same_through_the_wire() -> None:
    experiment = testing.experiment(algorithm="tpe", settings={"random_state": "5"}, parameters=PARAMS, max_trials=50)
    issued: list[TrialAssignment] = []
    trials: list[SuggestionTrial] = []
    direct, through = Suggester(), Suggester()
    for _ in range(3):
        request = SuggestionRequest(
            experiment, tuple(trials), tuple(issued), 2, key=suggestions.experiment_key(experiment)
        )
        expected = direct.suggest(request)
        got = through.suggest(wire.request_from_proto(wire.request_to_proto(request)))
        assert got.assignments == expected.assignments
        for assignment in expected.assignments:
            name = f"t{len(issued)}"
            issued.append(TrialAssignment(name=name, parameter_assignments=list(assignment)))
            pairs = tuple((a.name or "", a.value or "") for a in assignment)
            trials.append(SuggestionTrial(name, pairs, TrialConditionType.SUCCEEDED, (("loss", str(len(issued))),)))


def test_trial_labels_travel_with_the_trials_as_katib_sends_them() -> None:
    experiment = testing.experiment(algorithm="pbt")
    lineage = {"pbt.suggestion.katib.kubeflow.org/generation": "1", "pbt.suggestion.katib.kubeflow.org/parent": "p"}
    issued = (
        TrialAssignment(name="a", parameter_assignments=[ParameterAssignment(name="lr", value="0.5")], labels=lineage),
        TrialAssignment(name="b", parameter_assignments=[ParameterAssignment(name="lr", value="0.6")]),
    )
    message = wire.request_to_proto(SuggestionRequest(experiment, (), issued, 1))
    assert dict(message.trials[0].spec.labels) == lineage
    back = wire.request_from_proto(message)
    assert [a.labels for a in back.issued] == [lineage, None]
