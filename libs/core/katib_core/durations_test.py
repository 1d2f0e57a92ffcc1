import pytest

from katib_core import durations
from katib_core.errors import ValidationError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("1s", 1.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("2us", 2e-6),
        ("-3s", -3.0),
        (".5s", 0.5),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert durations.parse(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "1x", "s", "1s 2s", "1s-2s", "--1s"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValidationError, match="^-p: "):
        durations.parse(text, field="-p")
