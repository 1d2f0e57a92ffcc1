from katib_core.constants import STEP_METRIC
from katib_core.metric_history import MetricPoint, history

T1, T2, T3 = "2026-12-03T10:00:00.000001Z", "2026-12-03T10:00:01.000002Z", "2026-12-03T10:00:02.000003Z"


def test_values_get_the_step_reported_at_their_timestamp() -> None:
    rows = [
        (T1, STEP_METRIC, "0"),
        (T1, "loss", "0.9"),
        (T1, "acc", "0.1"),
        (T2, STEP_METRIC, "10"),
        (T2, "loss", "0.5"),
        (T3, "loss", "0.4"),  # reported without step=
    ]
    assert history(rows) == {
        "loss": [MetricPoint(0.9, 0, T1), MetricPoint(0.5, 10, T2), MetricPoint(0.4, None, T3)],
        "acc": [MetricPoint(0.1, 0, T1)],
    }


def test_text_and_non_finite_values_are_left_out() -> None:
    rows = [(T1, "loss", "unavailable"), (T2, "loss", "nan"), (T2, "acc", "1"), (T3, STEP_METRIC, "x")]
    assert history(rows) == {"acc": [MetricPoint(1.0, None, T2)]}
