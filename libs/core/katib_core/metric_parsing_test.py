from datetime import datetime

import pytest

from katib_core import metric_parsing, timestamps
from katib_core.errors import ValidationError
from katib_core.observations import MetricPoint

ZERO = timestamps.ZERO_TIME
T1 = datetime(2024, 7, 29, 15, 9, 8)


def rows(*items: tuple[datetime, str, str]) -> list[MetricPoint]:
    return [MetricPoint(*item) for item in items]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("loss=0.3", rows((ZERO, "loss", "0.3"))),
        ("epoch 1: loss = 0.25 accuracy=.98", rows((ZERO, "loss", "0.25"), (ZERO, "accuracy", ".98"))),
        ("Score=-7.53e-05 loss=+1E3", rows((ZERO, "loss", "+1E3"))),
        ("2024-07-29T15:09:08Z loss=0.1", rows((T1, "loss", "0.1"))),
        ("2024-07-29T17:09:08+02:00 loss=0.1", rows((T1, "loss", "0.1"))),
        ("2024-07-29 loss=0.1", rows((ZERO, "loss", "0.1"))),
        ("2024-07-29T15:09:08Z", []),
        ("no metrics here", []),
        ("val-loss=0.5", []),  # a name is a whole match: "val-loss" is not "loss"
        ("loss=nan", []),  # Katib's regex matches an empty value there; an empty row is useless
        ("loss=1 loss=2", rows((ZERO, "loss", "1"), (ZERO, "loss", "2"))),
        ("lossy=1", []),
    ],
)
def test_text_with_the_default_filter(line: str, expected: list[MetricPoint]) -> None:
    assert metric_parsing.TextParser(["loss", "accuracy"]).parse_line(line) == expected


def test_text_with_custom_filters() -> None:
    parser = metric_parsing.TextParser(["loss", "acc"], [r"(\w+):\s*([\d.]+)", r"\{(\w+)=([\d.]+)\}"])
    assert parser.parse_line("loss: 0.5 {acc=0.9}") == rows((ZERO, "loss", "0.5"), (ZERO, "acc", "0.9"))


def test_parse_whole_text() -> None:
    text = "start\nloss=0.5\n2024-07-29T15:09:08Z loss=0.4 acc=0.7\n"
    assert metric_parsing.parse(text, metric_names=["loss", "acc"]) == rows(
        (ZERO, "loss", "0.5"), (T1, "loss", "0.4"), (T1, "acc", "0.7")
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"loss": "0.3", "timestamp": "2024-07-29T15:09:08Z"}', rows((T1, "loss", "0.3"))),
        ('{"loss": "0.3", "timestamp": 1722265748}', rows((T1, "loss", "0.3"))),
        ('{"loss": "0.3", "timestamp": 1722265748.5}', rows((T1.replace(microsecond=500000), "loss", "0.3"))),
        ('{"loss": "0.3", "timestamp": "yesterday"}', rows((ZERO, "loss", "0.3"))),
        ('{"loss": "0.3"}', rows((ZERO, "loss", "0.3"))),
        ('{"loss": 0.3, "acc": "0.9"}', rows((ZERO, "acc", "0.9"))),  # numbers do not count (Katib)
        ("", []),
        ("   ", []),
    ],
)
def test_json_lines(line: str, expected: list[MetricPoint]) -> None:
    assert metric_parsing.JsonParser(["loss", "acc"]).parse_line(line) == expected


@pytest.mark.parametrize("bad", ["loss=0.3", "[1, 2]", '"text"', '{"loss": '])
def test_one_bad_json_line_fails_everything(bad: str) -> None:
    with pytest.raises(ValidationError, match=r"^line 2: "):
        metric_parsing.parse(['{"loss": "1"}', bad], metric_names=["loss"], file_format="JSON")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"(\w+)=(\d+", "not a valid regular expression"),
        (r"(\w+)=\d+", "two top subexpressions"),
        (r"\w+=\d+", "two top subexpressions"),
    ],
)
def test_bad_filters(pattern: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        metric_parsing.compile_filter(pattern)


def test_parser_for() -> None:
    assert isinstance(metric_parsing.parser_for("TEXT", ["a"]), metric_parsing.TextParser)
    assert isinstance(metric_parsing.parser_for("JSON", ["a"]), metric_parsing.JsonParser)
    with pytest.raises(ValidationError, match="^format: "):
        metric_parsing.parser_for("CSV", ["a"])
    with pytest.raises(ValidationError, match="^filters: "):
        metric_parsing.parser_for("JSON", ["a"], [r"(a)(b)"])


def test_objective_never_found_reports_only_unavailable() -> None:
    found = rows((T1, "acc", "0.9"))
    assert metric_parsing.observation_rows(found, "loss") == rows((ZERO, "loss", "unavailable"))
    assert metric_parsing.observation_rows([*found, *rows((T1, "loss", "1"))], "loss") == [
        *found,
        *rows((T1, "loss", "1")),
    ]
