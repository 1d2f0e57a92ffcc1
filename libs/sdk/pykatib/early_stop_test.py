"""The SDK's side of Push early stopping: rules from env, one verdict, clear errors."""

from __future__ import annotations

import pytest

from katib_core.errors import ValidationError
from pykatib._early_stop import EarlyStop

ENV = {
    "KATIB_EARLY_STOPPING_RULES": "loss;0.5;greater;2",
    "KATIB_EARLY_STOPPING_OBJECTIVE": "loss;minimize",
}


def test_the_verdict_comes_once_from_the_report_that_meets_the_rules() -> None:
    early = EarlyStop(dict(ENV))
    assert early.feed([("loss", "0.9")]) is False  # before its start step
    assert early.feed([("acc", "0.1")]) is False  # other metrics don't count as reports of loss
    assert early.feed([("pykatib.step", "1"), ("loss", "0.8")]) is True
    assert early.stopped
    assert early.feed([("loss", "0.9")]) is False  # said once


def test_a_trial_that_beats_the_median_is_never_stopped_and_no_rules_mean_no_verdict() -> None:
    early = EarlyStop(dict(ENV))
    assert [early.feed([("loss", v)]) for v in ("0.4", "0.9", "0.9")] == [False, False, False]  # best so far 0.4
    assert EarlyStop({}).feed([("loss", "100")]) is False


@pytest.mark.parametrize(
    ("env", "error", "match"),
    [
        ({"KATIB_EARLY_STOPPING_RULES": "loss;x;greater;2"}, ValidationError, "KATIB_EARLY_STOPPING_RULES"),
        ({**ENV, "KATIB_EARLY_STOPPING_GRACE_SECONDS": "-1"}, ValueError, "KATIB_EARLY_STOPPING_GRACE_SECONDS"),
    ],
)
def test_bad_env_names_the_variable(env: dict[str, str], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        EarlyStop(env)
