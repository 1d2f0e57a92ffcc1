from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from katib_core import observations
from katib_core.errors import ValidationError
from katib_core.observations import MetricPoint, Report

T = "2024-07-29T15:09:08Z"


def test_build_report_keeps_order_and_opaque_values() -> None:
    report = observations.build_report("t1", [(T, "loss", "0.1"), (T, "acc", "tensor(0.9)")], key="k" * 16)
    moment = datetime(2024, 7, 29, 15, 9, 8)
    points = (MetricPoint(moment, "loss", "0.1"), MetricPoint(moment, "acc", "tensor(0.9)"))
    assert report == Report("t1", points, "k" * 16)


def test_entries_without_a_timestamp_are_skipped() -> None:
    report = observations.build_report("t1", [("", "loss", "0.1"), (T, "loss", "0.2")])
    assert [p.value for p in report.points] == ["0.2"]


def test_empty_report_is_valid() -> None:
    assert observations.build_report("t", []).points == ()


@pytest.mark.parametrize(
    ("trial", "entries", "field"),
    [
        ("", [(T, "loss", "1")], "trial_name"),
        ("x" * 256, [], "trial_name"),
        ("a\x00b", [], "trial_name"),
        ("t", [(T, "loss", "1"), ("yesterday", "loss", "1")], "observation_log.metric_logs[1].time_stamp"),
        ("t", [(T, "", "1")], "observation_log.metric_logs[0].metric.name"),
        ("t", [(T, "n" * 256, "1")], "observation_log.metric_logs[0].metric.name"),
        ("t", [(T, "loss", "v" * 65_536)], "observation_log.metric_logs[0].metric.value"),
        ("t", [(T, "loss", "é" * 40_000)], "observation_log.metric_logs[0].metric.value"),
        ("t", [(T, "loss", "1\x00")], "observation_log.metric_logs[0].metric.value"),
    ],
)
def test_bad_reports_name_the_field(trial: str, entries: list[tuple[str, str, str]], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        observations.build_report(trial, entries)
    assert caught.value.field == field
    assert str(caught.value).startswith(field + ": ")


def test_limits_are_inclusive() -> None:
    report = observations.build_report("x" * 255, [(T, "n" * 255, "v" * 65_535), (T, "名" * 255, "é" * 32_767)])
    assert len(report.points) == 2


@pytest.mark.parametrize("key", ["short", "a" * 65, "has space in it", "ünïcödé-key"])
def test_bad_report_keys_are_rejected(key: str) -> None:
    with pytest.raises(ValidationError):
        observations.build_report("t", [], key=key)


entry = st.tuples(
    st.one_of(st.just(T), st.just(""), st.text(max_size=30)),
    st.text(max_size=300),
    st.text(max_size=50),
)


@given(st.text(max_size=300), st.lists(entry, max_size=20))
def test_build_report_either_accepts_within_limits_or_names_a_field(
    trial: str, entries: list[tuple[str, str, str]]
) -> None:
    try:
        report = observations.build_report(trial, entries)
    except ValidationError as exc:
        assert exc.field == "trial_name" or exc.field.startswith("observation_log.metric_logs[")
        assert exc.reason
        return
    assert 0 < len(report.trial_name) <= 255
    assert len(report.points) == sum(1 for stamp, _, _ in entries if stamp)
    for point in report.points:
        assert 0 < len(point.name) <= 255
        assert "\x00" not in point.name
        assert "\x00" not in point.value
