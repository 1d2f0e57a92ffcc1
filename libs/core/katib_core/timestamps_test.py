from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from katib_core import timestamps
from katib_core.errors import ValidationError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-07-29T15:09:08Z", datetime(2024, 7, 29, 15, 9, 8)),
        ("2019-02-03T04:05:06+09:00", datetime(2019, 2, 2, 19, 5, 6)),
        ("2019-02-03T04:05:06-01:30", datetime(2019, 2, 3, 5, 35, 6)),
        ("2019-02-03T04:05:06.5Z", datetime(2019, 2, 3, 4, 5, 6, 500000)),
        ("2019-02-03T04:05:06.123456789Z", datetime(2019, 2, 3, 4, 5, 6, 123456)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1)),
        ("9999-12-31T23:59:59.999999Z", datetime(9999, 12, 31, 23, 59, 59, 999999)),
    ],
)
def test_parse_accepts_rfc3339(text: str, expected: datetime) -> None:
    assert timestamps.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2024-07-29 15:09:08Z",  # the T separator is required
        "2024-07-29T15:09:08",  # an offset is required
        "2024-07-29T15:09Z",
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-07-29T24:00:00Z",
        "2024-07-29T23:59:60Z",
        "2024-07-29T15:09:08+25:00",
        "2024-07-29T15:09:08.Z",
        "0001-01-01T00:00:00+01:00",  # year 0 in UTC
        "9999-12-31T23:00:00-02:00",  # year 10000 in UTC
        "1565000000",
        "２０２４-07-29T15:09:08Z",  # non-ASCII digits
    ],
)
def test_parse_rejects_non_rfc3339_and_names_the_field(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        timestamps.parse(text, field="start_time")
    assert caught.value.field == "start_time"
    assert "start_time" in str(caught.value)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2019, 2, 2, 19, 5, 6), "2019-02-02T19:05:06Z"),
        (datetime(2019, 2, 2, 19, 5, 6, 500000), "2019-02-02T19:05:06.5Z"),
        (datetime(2019, 2, 2, 19, 5, 6, 120), "2019-02-02T19:05:06.00012Z"),
        (datetime(1, 1, 1), "0001-01-01T00:00:00Z"),
        (datetime(2019, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=9))), "2019-02-02T19:05:06Z"),
    ],
)
def test_format_nano_matches_go(moment: datetime, expected: str) -> None:
    assert timestamps.format_nano(moment) == expected


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)))
def test_format_then_parse_round_trips(moment: datetime) -> None:
    assert timestamps.parse(timestamps.format_nano(moment)) == moment


@given(
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
def test_offsets_convert_to_the_same_instant(moment: datetime, offset_minutes: int) -> None:
    zone = timezone(timedelta(minutes=offset_minutes))
    text = moment.replace(tzinfo=UTC).astimezone(zone).isoformat()
    assert timestamps.parse(text) == moment


def test_utc_now_is_naive_utc() -> None:
    now = timestamps.utc_now()
    assert now.tzinfo is None
    assert abs(now - datetime.now(UTC).replace(tzinfo=None)) < timedelta(seconds=5)
