from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from katib_core import quantities
from katib_core.errors import ValidationError


@pytest.mark.parametrize(
    ("value", "text", "amount"),
    [
        (1, "1", Decimal(1)),
        (0, "0", Decimal(0)),
        (0.5, "0.5", Decimal("0.5")),
        (1.0, "1", Decimal(1)),
        (1.5e9, "1500000000", Decimal(1_500_000_000)),
        (1e-3, "0.001", Decimal("0.001")),
        ("500m", "500m", Decimal("0.5")),
        ("1Gi", "1Gi", Decimal(2**30)),
        ("1.5Mi", "1.5Mi", Decimal(3 * 2**19)),
        ("2e3", "2e3", Decimal(2000)),
        ("1E-2", "1E-2", Decimal("0.01")),
        ("3E", "3E", Decimal(3 * 10**18)),
        (".5", ".5", Decimal("0.5")),
        ("1.", "1.", Decimal(1)),
        ("+4k", "+4k", Decimal(4000)),
        ("100n", "100n", Decimal("1E-7")),
    ],
)
def test_quantities_parse_as_kubernetes_parses_them(value: Any, text: str, amount: Decimal) -> None:
    assert quantities.text(value, field="f") == text
    assert quantities.parse(value, field="f") == amount


@pytest.mark.parametrize(
    "value",
    ["", "1.5x", "1 Gi", "Gi", "1ki", "0x10", "1e", "1e1.5", "--1", True, None, [1], float("nan"), float("inf")],
)
def test_anything_else_is_refused_naming_the_field(value: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        quantities.text(value, field="spec.x")
    assert raised.value.field == "spec.x"
    assert "is not a quantity" in str(raised.value)


@pytest.mark.parametrize(("value", "count"), [(1, 1), ("2", 2), ("1000m", 1), (0, 0), (2.0, 2)])
def test_device_counts_are_whole_quantities(value: Any, count: int) -> None:
    assert quantities.whole_count(value, field="gpu") == count


@pytest.mark.parametrize(("value", "message"), [("500m", "is not a whole number"), (-1, "must not be negative")])
def test_fractional_or_negative_device_counts_are_refused(value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        quantities.whole_count(value, field="gpu")


def test_every_resource_list_of_an_object_is_normalized_and_nothing_else() -> None:
    job: dict[str, Any] = {
        "spec": {
            "replicas": 2,
            "template": {
                "spec": {
                    "containers": [{"name": "a", "resources": {"limits": {"cpu": 1, "nvidia.com/gpu": 1}}}],
                    "initContainers": [
                        {"name": "b", "resources": {"requests": {"memory": 1.5e9}, "claims": [{"name": "x"}]}}
                    ],
                }
            },
        }
    }
    normalized = quantities.normalize_resources(job, field="t")
    pod = normalized["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"] == {"cpu": "1", "nvidia.com/gpu": "1"}
    assert pod["initContainers"][0]["resources"] == {"requests": {"memory": "1500000000"}, "claims": [{"name": "x"}]}
    assert normalized["spec"]["replicas"] == 2
    assert job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == 1  # input untouched
    with pytest.raises(ValidationError) as raised:
        quantities.normalize_resources(
            {"spec": {"containers": [{}, {"resources": {"limits": {"cpu": "x"}}}]}}, field="t"
        )
    assert raised.value.field == "t.spec.containers[1].resources.limits[cpu]"
