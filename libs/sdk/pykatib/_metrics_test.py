import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest

from katib_core import timestamps
from katib_core.errors import ValidationError
from pykatib import _metrics


class Tensor:
    """Stands in for a 0-d tensor: str() is not a number, float() is."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __float__(self) -> float:
        return self.value

    def __str__(self) -> str:
        return f"tensor({self.value})"


class Float32(float):
    """Stands in for numpy.float64 (a float subclass with its own str)."""

    def __str__(self) -> str:
        return "np.float32(0.25)"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.99, "0.99"),
        (1, "1"),
        ("0.99", "0.99"),
        (" 0.5 ", " 0.5 "),  # str values are sent as given, like upstream
        (-7.53e-05, "-7.53e-05"),
        (float("nan"), "nan"),
        (Tensor(0.1), "0.1"),
        (Float32(0.25), "0.25"),
        (Decimal("0.125"), "0.125"),
        (Fraction(1, 4), "0.25"),
        (True, "1.0"),
    ],
)
def test_value_text(value: object, text: str) -> None:
    assert _metrics.value_text(value) == text


@pytest.mark.parametrize("value", ["abc", None, [1], "", "1\x00", object()])
def test_values_float_refuses_are_rejected_with_upstreams_message(value: object) -> None:
    with pytest.raises(ValueError, match="^Invalid value ") as caught:
        _metrics.value_text(value)
    assert str(caught.value) == (
        f"Invalid value {value} for metrics value. The metrics value should have or can be converted to type `float`. "
    )


@pytest.mark.parametrize("name", ["", "x" * 256, "a\x00b", 3, None])
def test_bad_metric_names(name: object) -> None:
    with pytest.raises(ValidationError, match=r"^metrics\["):
        _metrics.check_name(name)


def test_pairs_keep_dict_order_and_put_the_step_first() -> None:
    assert _metrics.pairs({"loss": 0.5, "acc": 1}) == (("loss", "0.5"), ("acc", "1"))
    assert _metrics.pairs({"loss": 0.5}, step=7) == (("pykatib.step", "7"), ("loss", "0.5"))
    assert _metrics.pairs({}, step=0) == (("pykatib.step", "0"),)


@pytest.mark.parametrize("step", [-1, 1.5, "3", True])
def test_bad_steps(step: object) -> None:
    with pytest.raises(ValidationError, match="^step: "):
        _metrics.step_number(step)


def test_stamps_strictly_increase_across_threads() -> None:
    source = _metrics.StampSource()
    seen: list[list[int]] = [[] for _ in range(4)]

    def take(i: int) -> None:
        seen[i].extend(source.next_micros() for _ in range(2000))

    threads = [threading.Thread(target=take, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [stamp for stamps in seen for stamp in stamps]
    assert len(set(everything)) == len(everything)
    assert all(stamps == sorted(stamps) for stamps in seen)
    assert abs(everything[0] / 1e6 - time.time()) < 60


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (1_722_265_748_000_000, "2024-07-29T15:09:08Z"),
        (1_722_265_748_500_000, "2024-07-29T15:09:08.5Z"),
        (1_722_265_748_000_120, "2024-07-29T15:09:08.00012Z"),
        (0, "1970-01-01T00:00:00Z"),
    ],
)
def test_format_micros_is_rfc3339_utc(micros: int, text: str) -> None:
    assert _metrics.format_micros(micros) == text
    assert timestamps.parse(text) == datetime.fromtimestamp(micros / 1e6, UTC).replace(tzinfo=None)
