import pytest

from katib_core import stop_rules, timestamps
from katib_core.errors import ValidationError
from katib_core.models import EarlyStoppingRule
from katib_core.observations import MetricPoint
from katib_core.stop_rules import StopRule, StopRuleTracker


def points(name: str, *values: str) -> list[MetricPoint]:
    return [MetricPoint(timestamps.ZERO_TIME, name, value) for value in values]


@pytest.mark.parametrize(
    ("flag", "rule"),
    [
        ("accuracy;0.8;less;4", StopRule("accuracy", "0.8", "less", 4)),
        ("loss;2;greater;0", StopRule("loss", "2", "greater", 0)),
        ("loss;2;equal;", StopRule("loss", "2", "equal", 0)),
    ],
)
def test_flags_round_trip(flag: str, rule: StopRule) -> None:
    assert stop_rules.parse_flag(flag) == rule
    assert stop_rules.parse_flag(stop_rules.format_flag(rule)) == rule


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("accuracy;0.8;less", "name;value;comparison;startStep"),
        ("accuracy;0.8;less;4;5", "name;value;comparison;startStep"),
        (";0.8;less;4", "metric name is empty"),
        ("a;x;less;4", "is not a number"),
        ("a;inf;less;4", "must be finite"),
        ("a;1;lower;4", "comparison"),
        ("a;1;less;four", "not an integer"),
        ("a;1;less;-1", "must not be negative"),
    ],
)
def test_bad_flags(flag: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        stop_rules.parse_flag(flag)


def test_from_model() -> None:
    rule = EarlyStoppingRule(name="acc", value="0.5", comparison="less", start_step=3)
    assert stop_rules.from_model(rule) == StopRule("acc", "0.5", "less", 3)


@pytest.mark.parametrize(
    ("rules", "feed", "met"),
    [
        ([StopRule("loss", "1", "greater")], points("loss", "0.5", "1.5"), True),
        ([StopRule("loss", "1", "greater")], points("loss", "0.5", "1"), False),
        ([StopRule("loss", "1", "equal")], points("loss", "1.0"), True),
        ([StopRule("loss", "1", "less")], points("loss", "x", "nan", "2"), False),
        ([StopRule("loss", "1", "less", 3)], points("loss", "0.1", "0.1"), False),
        ([StopRule("loss", "1", "less", 3)], points("loss", "0.1", "0.1", "0.1"), True),
        # from the start step on, not only at it (Katib's code checks the start step only)
        ([StopRule("loss", "1", "less", 2)], points("loss", "5", "5", "5", "0.5"), True),
        # every rule must hold; a rule that held stays met
        ([StopRule("loss", "1", "less"), StopRule("acc", "0.2", "less")], points("loss", "0.5", "2"), False),
        (
            [StopRule("loss", "1", "less"), StopRule("acc", "0.2", "less")],
            [*points("loss", "0.5", "2"), *points("acc", "0.1")],
            True,
        ),
        ([], points("loss", "0"), False),
    ],
)
def test_tracker(rules: list[StopRule], feed: list[MetricPoint], met: bool) -> None:
    assert StopRuleTracker(rules).feed(feed) is met


@pytest.mark.parametrize(
    ("objective_type", "values", "met"),
    [
        # maximize: the best accuracy so far must stay below the rule's value
        ("maximize", ["0.9", "0.1"], False),
        ("maximize", ["0.1", "0.2"], True),
        ("minimize", ["0.1", "0.9"], True),
    ],
)
def test_the_objective_compares_its_best_value(objective_type: str, values: list[str], met: bool) -> None:
    rule = StopRule("acc", "0.5", "less", 2)
    tracker = StopRuleTracker([rule], objective="acc", objective_type=objective_type)
    assert tracker.feed(points("acc", *values)) is met
