import pytest
from hypothesis import given
from hypothesis import strategies as st

from katib_core import aggregation
from katib_core.errors import ValidationError
from katib_core.models import Metric, MetricStrategy, Observation

NA = "unavailable"
STRATEGIES = [MetricStrategy(name="loss", value="min"), MetricStrategy(name="acc", value="max")]


def test_katib_test_vector() -> None:
    rows = [("2020-08-10T14:47:38+08:00", "loss", "0.99"), ("2020-08-10T14:50:38+08:00", "loss", "0.11")]
    observation = aggregation.aggregate(rows, STRATEGIES[:1])
    assert observation == Observation(metrics=[Metric(name="loss", min="0.11", max="0.99", latest="0.11")])


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # original strings are kept, not re-formatted
        ([("2024-01-01T00:00:00Z", "loss", "1.50"), ("2024-01-01T00:00:01Z", "loss", "2e0")], ("1.50", "2e0", "2e0")),
        # ties go to the later row
        ([("2024-01-01T00:00:00Z", "loss", "3"), ("2024-01-01T00:00:00Z", "loss", "1")], ("1", "3", "1")),
        # an older row returned later never becomes latest
        ([("2024-01-01T00:00:05Z", "loss", "3"), ("2024-01-01T00:00:00Z", "loss", "1")], ("1", "3", "3")),
        # non-numeric values never touch min/max but can be latest
        (
            [("2024-01-01T00:00:00Z", "loss", "0.5"), ("2024-01-01T00:00:01Z", "loss", "tensor(0.1)")],
            ("0.5", "0.5", "tensor(0.1)"),
        ),
        # the year-1 sentinel never wins latest over a real value
        ([("2024-01-01T00:00:00Z", "loss", "0.5"), ("0001-01-01T00:00:00Z", "loss", NA)], ("0.5", "0.5", "0.5")),
        ([("0001-01-01T00:00:00Z", "loss", NA)], (NA, NA, NA)),
    ],
)
def test_min_max_latest(rows: list[tuple[str, str, str]], expected: tuple[str, str, str]) -> None:
    observation = aggregation.aggregate(rows, STRATEGIES[:1])
    assert observation is not None
    assert observation.metrics is not None
    metric = observation.metrics[0]
    assert (metric.min, metric.max, metric.latest) == expected


def test_metrics_follow_strategy_order_and_unknown_metrics_are_ignored() -> None:
    rows = [("2024-01-01T00:00:00Z", "acc", "0.9"), ("2024-01-01T00:00:00Z", "other", "7")]
    observation = aggregation.aggregate(rows, STRATEGIES)
    assert observation is not None
    assert [m.to_api() for m in observation.metrics or []] == [
        {"name": "loss", "min": NA, "max": NA, "latest": NA},
        {"name": "acc", "min": "0.9", "max": "0.9", "latest": "0.9"},
    ]


def test_no_rows_of_strategy_metrics_give_no_observation() -> None:
    assert aggregation.aggregate([], STRATEGIES) is None
    assert aggregation.aggregate([("2024-01-01T00:00:00Z", "other", "1")], STRATEGIES) is None


def test_a_bad_timestamp_fails_everything() -> None:
    with pytest.raises(ValidationError, match="RFC 3339"):
        aggregation.aggregate([("2024-01-01 00:00:00", "loss", "1")], STRATEGIES)


@pytest.mark.parametrize(
    ("metric", "strategy", "expected"),
    [
        (Metric(name="m", min="1", max="3", latest="2"), "min", "1"),
        (Metric(name="m", min="1", max="3", latest="2"), "max", "3"),
        (Metric(name="m", min="1", max="3", latest="2"), "latest", "2"),
        (Metric(name="m", min=NA, max=NA, latest="x"), "min", "x"),
        (Metric(name="m", min=NA, max=NA, latest=NA), "max", NA),
    ],
)
def test_strategy_value_falls_back_to_latest(metric: Metric, strategy: str, expected: str) -> None:
    assert aggregation.strategy_value(metric, strategy) == expected


@pytest.mark.parametrize(
    ("text", "number"),
    [("1", 1.0), ("-2.5e3", -2500.0), ("inf", float("inf")), (" 1", None), ("1_0", None), ("", None), ("abc", None)],
)
def test_parse_number_is_go_like(text: str, number: float | None) -> None:
    assert aggregation.parse_number(text) == number


@given(st.lists(st.tuples(st.integers(0, 10_000), st.floats(-1e6, 1e6, allow_nan=False)), min_size=1, max_size=30))
def test_min_max_latest_properties(points: list[tuple[int, float]]) -> None:
    rows = [(f"2024-01-01T00:00:00.{t:06d}Z", "loss", repr(v)) for t, v in points]
    observation = aggregation.aggregate(rows, STRATEGIES[:1])
    assert observation is not None
    assert observation.metrics
    metric = observation.metrics[0]
    values = [v for _, v in points]
    assert float(metric.min or "nan") == min(values)
    assert float(metric.max or "nan") == max(values)
    newest = max(t for t, _ in points)
    assert float(metric.latest or "nan") == [v for t, v in points if t == newest][-1]
