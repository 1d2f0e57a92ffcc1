from typing import Any

import pytest

from katib_core import defaulting, job_conditions
from katib_core.errors import ValidationError
from katib_core.job_conditions import JobState
from katib_core.trial_conditions import JobPhase

SUCCESS = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
FAILURE = 'status.conditions.#(type=="Failed")#|#(status=="True")#'


def job(*conditions: tuple[str, str], **status: Any) -> dict[str, Any]:
    items = [{"type": t, "status": s, "reason": f"R{t}", "message": f"m{t}"} for t, s in conditions]
    return {"kind": "Job", "status": {"conditions": items, **status} if conditions else status}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (job(("Complete", "True")), JobState(JobPhase.SUCCEEDED, "RComplete", "mComplete")),
        (job(("Failed", "True")), JobState(JobPhase.FAILED, "RFailed", "mFailed")),
        (job(("Complete", "True"), ("Failed", "True")), JobState(JobPhase.FAILED, "RFailed", "mFailed")),
        (job(("Complete", "False")), JobState(JobPhase.RUNNING)),
        (job(), JobState(JobPhase.RUNNING)),
        ({"kind": "Job"}, JobState(JobPhase.RUNNING)),
    ],
)
def test_katib_job_conditions(document: dict[str, Any], expected: JobState) -> None:
    assert job_conditions.job_state(document, success_condition=SUCCESS, failure_condition=FAILURE) == expected


def test_every_default_condition_parses() -> None:
    for defaults in defaulting.JOB_KIND_DEFAULTS.values():
        assert job_conditions.evaluate({}, defaults["success"]) is None
        assert job_conditions.evaluate({}, defaults["failure"]) is None


DOC = {
    "status": {
        "phase": "Done",
        "succeeded": 2,
        "conditions": [
            {"type": "A", "status": "True", "n": 1},
            {"type": "B", "status": "False", "n": 5},
            {"type": "Bx", "status": "True", "n": 7, "ok": True},
        ],
    },
    "a.b": {"c": 1},
}


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("status.phase", "Done"),
        ("status.conditions.#", 3),
        ("status.conditions.1.type", "B"),
        ("status.conditions.#.type", ["A", "B", "Bx"]),
        ('status.conditions.#(type=="B")', {"type": "B", "status": "False", "n": 5}),
        ('status.conditions.#(type=="B").n', 5),
        ('status.conditions.#(status=="True")#.type', ["A", "Bx"]),
        ("status.conditions.#(n>4)#|#", 2),
        ("status.conditions.#(n<=1)#.type", ["A"]),
        ("status.conditions.#(n!=5)#.n", [1, 7]),
        ('status.conditions.#(type%"B*")#.n', [5, 7]),
        ('status.conditions.#(type!%"B*")#.n', [1]),
        ("status.conditions.#(ok==true)#.type", ["Bx"]),
        ("status.conditions.#(ok)#.type", ["Bx"]),
        ('status.conditions.#(type=="Z")', None),
        ('status.conditions.#(type=="Z")#', []),
        ("status.missing.x", None),
        (r"a\.b.c", 1),
    ],
)
def test_gjson_subset(expression: str, result: Any) -> None:
    assert job_conditions.evaluate(DOC, expression) == result


@pytest.mark.parametrize(
    ("expression", "holds"),
    [
        ('status.conditions.#(type=="A")', True),
        ('status.conditions.#(type=="A")#', True),
        ('status.conditions.#(type=="Z")#', False),
        ("status.phase", False),  # a string is neither an object nor an array
        ("status.succeeded", False),
    ],
)
def test_holds_only_for_objects_and_non_empty_arrays(expression: str, holds: bool) -> None:
    assert job_conditions.holds(DOC, expression) is holds


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "status.conditions|@reverse",
        "status.*",
        "status.conditions.#(a.#(b==1))",
        "[a,b]",
        "status.#(x=~y)",
        "a..b",
        "a.",
    ],
)
def test_unsupported_syntax_is_a_clear_error(expression: str) -> None:
    with pytest.raises(ValidationError, match="condition"):
        job_conditions.evaluate(DOC, expression)
