import random

from katib_core import suggestions, testing
from katib_core.constants import TrialConditionType
from katib_core.models import AlgorithmSetting, Metric, Observation

C = TrialConditionType.CREATED


def test_conversion_excludes_metrics_unavailable_and_unobserved_early_stopped() -> None:
    trials = [
        testing.trial("a", C, TrialConditionType.METRICS_UNAVAILABLE),
        testing.trial("b", C, TrialConditionType.EARLY_STOPPED),
        testing.trial("c", C, TrialConditionType.EARLY_STOPPED, loss="0.3"),
        testing.trial("d", C, TrialConditionType.RUNNING),
        testing.trial("e", C, TrialConditionType.SUCCEEDED, loss="0.1"),
    ]
    converted = suggestions.to_suggestion_trials(trials)
    assert [(t.name, t.condition) for t in converted] == [("c", "EarlyStopped"), ("d", "Running"), ("e", "Succeeded")]
    assert converted[2].metric("loss") == "0.1"
    assert converted[2].assignments == (("lr", "0.05"),)


def test_metric_value_follows_strategy_with_latest_fallback() -> None:
    trial = testing.trial("a", C, TrialConditionType.SUCCEEDED)
    assert trial.status is not None
    trial.status.observation = Observation(
        metrics=[Metric(name="loss", min="unavailable", max="unavailable", latest="x")]
    )
    assert suggestions.to_suggestion_trials([trial])[0].metric("loss") == "x"


def test_record_names_assignments_uniquely_and_counts_requests() -> None:
    experiment = testing.experiment()
    record = suggestions.new_suggestion(experiment, now=testing.T0)
    assert record.metadata is not None
    assert record.metadata.owner_references is not None
    reply = suggestions.SuggestionReply(assignments=((), ()))
    once = suggestions.record(record, experiment, reply, taken=[], rng=random.Random(3), now=testing.T0)
    twice = suggestions.record(once, experiment, reply, taken=[], rng=random.Random(3), now=testing.T0)
    names = [a.name for a in suggestions.issued(twice)]
    assert len(names) == len(set(names)) == 4
    assert twice.spec is not None
    assert twice.spec.requests == 4
    assert twice.status is not None
    assert twice.status.suggestion_count == 4
    assert not suggestions.is_exhausted(twice)
    done = suggestions.record(
        twice, experiment, suggestions.SuggestionReply(exhausted=True), taken=[], rng=random.Random(), now=testing.T0
    )
    assert suggestions.is_exhausted(done)
    assert suggestions.is_succeeded(done)


def test_record_takes_the_algorithms_trial_names_and_keeps_its_settings() -> None:
    experiment = testing.experiment(algorithm="hyperband", settings={"eta": "3", "r_l": "9"})
    record = suggestions.new_suggestion(experiment, now=testing.T0)
    reply = suggestions.SuggestionReply(
        assignments=((), (), ()),
        trial_names=("exp-gen1-a", "", "Not_A_Name"),
        labels=({"generation": "1"}, {}, {}),
        algorithm_settings=(AlgorithmSetting(name="eta", value="3"), AlgorithmSetting(name="current_s", value="2")),
    )
    once = suggestions.record(record, experiment, reply, taken=["exp-taken"], rng=random.Random(1), now=testing.T0)
    issued = suggestions.issued(once)
    assert issued[0].name == "exp-gen1-a"
    assert issued[0].labels == {"generation": "1"}
    assert issued[1].name
    assert issued[1].name.startswith("exp-")
    assert issued[1].name != "exp-gen1-a"
    assert issued[2].name != "Not_A_Name"  # not a DNS label: the controller names it
    assert once.status is not None
    settings = {s.name: s.value for s in once.status.algorithm_settings or ()}
    assert settings == {"eta": "3", "r_l": "9", "current_s": "2"}
    # A name already issued (or an existing trial's) is never reused.
    again = suggestions.record(
        once,
        experiment,
        suggestions.SuggestionReply(assignments=((), ()), trial_names=("exp-gen1-a", "exp-taken")),
        taken=["exp-taken"],
        rng=random.Random(2),
        now=testing.T0,
    )
    names = [a.name for a in suggestions.issued(again)]
    assert len(set(names)) == 5
    assert "exp-taken" not in names


def test_request_experiment_overlays_the_returned_settings_as_katib_does() -> None:
    experiment = testing.experiment(algorithm="hyperband", settings={"eta": "3", "r_l": "9"})
    record = suggestions.new_suggestion(experiment, now=testing.T0)
    assert suggestions.request_experiment(experiment, record) is experiment  # nothing returned yet
    stored = suggestions.record(
        record,
        experiment,
        suggestions.SuggestionReply(
            algorithm_settings=(AlgorithmSetting(name="r_l", value="27"), AlgorithmSetting(name="current_i", value="1"))
        ),
        taken=[],
        rng=random.Random(),
        now=testing.T0,
    )
    shown = suggestions.request_experiment(experiment, stored)
    assert shown.spec is not None
    assert shown.spec.algorithm is not None
    assert [(s.name, s.value) for s in shown.spec.algorithm.algorithm_settings or ()] == [
        ("eta", "3"),
        ("r_l", "27"),
        ("current_i", "1"),
    ]
    assert experiment.spec is not None
    assert experiment.spec.algorithm is not None
    assert len(experiment.spec.algorithm.algorithm_settings or ()) == 2  # the stored spec is untouched


def test_an_empty_answer_is_idle_only_without_news() -> None:
    record = suggestions.new_suggestion(testing.experiment(settings={"random_state": "3"}), now=testing.T0)
    assert suggestions.is_idle(suggestions.SuggestionReply(), record)
    assert not suggestions.is_idle(suggestions.SuggestionReply(exhausted=True), record)
    changed = suggestions.SuggestionReply(algorithm_settings=(AlgorithmSetting(name="a", value="1"),))
    assert not suggestions.is_idle(changed, record)
    echoed = suggestions.SuggestionReply(algorithm_settings=(AlgorithmSetting(name="random_state", value="3"),))
    assert suggestions.is_idle(echoed, record)
