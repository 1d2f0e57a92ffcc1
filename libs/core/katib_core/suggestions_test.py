import random

from katib_core import suggestions, testing
from katib_core.constants import TrialConditionType
from katib_core.models import Metric, Observation

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
