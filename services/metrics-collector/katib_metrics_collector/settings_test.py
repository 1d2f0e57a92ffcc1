import pytest

from katib_core.errors import ValidationError
from katib_core.stop_rules import StopRule
from katib_metrics_collector.settings import Settings

WEBHOOK_ARGS = [
    "-t", "trial-1", "-m", "loss;acc", "-o-type", "minimize", "-s-db", "katib-db-manager.kubeflow:6789",
    "-path", "/var/log/katib/metrics.log", "-f", r"(\w+)=(\d+);(\w+):(\d+)", "-format", "TEXT", "-w", "false",
    "-stop-rule", "loss;2;greater;3", "-stop-rule", "acc;0.1;less;0", "-s-earlystop", "exp-medianstop.kubeflow:6788",
]  # fmt: skip


def test_the_flags_the_webhook_passes() -> None:
    settings = Settings.from_args(WEBHOOK_ARGS)
    assert settings.trial_name == "trial-1"
    assert settings.metric_names == ("loss", "acc")
    assert settings.objective == "loss"
    assert settings.filters == (r"(\w+)=(\d+)", r"(\w+):(\d+)")
    assert settings.wait_all is False
    assert settings.stop_rules == (StopRule("loss", "2", "greater", 3), StopRule("acc", "0.1", "less", 0))
    assert settings.early_stopping_address == "exp-medianstop.kubeflow:6788"
    assert (settings.poll_interval, settings.timeout, settings.report_timeout) == (1.0, 0.0, 120.0)


def test_go_flag_spellings() -> None:
    settings = Settings.from_args(
        ["-t=trial", "--m", "loss", "-path=/m.json", "-format=JSON", "-p", "250ms", "-timeout", "1m", "-w", "T"]
    )
    assert (settings.trial_name, settings.file_format, settings.poll_interval, settings.timeout, settings.wait_all) == (
        "trial",
        "JSON",
        0.25,
        60.0,
        True,
    )


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["-m", "loss", "-path", "/m"], "-t"),
        (["-t", "x", "-path", "/m"], "-m"),
        (["-t", "x", "-m", "loss"], "-path"),
        (["-t", "x", "-m", "loss", "-path", "/m", "-format", "CSV"], "format"),
        (["-t", "x", "-m", "loss", "-path", "/m", "-format", "JSON", "-f", "(a)(b)"], "filters"),
        (["-t", "x", "-m", "loss", "-path", "/m", "-f", "(a"], "filters[0]"),
        (["-t", "x", "-m", "loss", "-path", "/m", "-w", "maybe"], "-w"),
        (["-t", "x", "-m", "loss", "-path", "/m", "-p", "0"], "-p"),
        (["-t", "x", "-m", "loss", "-path", "/m", "-timeout", "5"], "-timeout"),
        (["-t", "x", "-m", "loss", "-path", "/m", "-stop-rule", "loss;1;less"], "-stop-rule"),
    ],
)
def test_bad_flags(argv: list[str], flag: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.from_args(argv)
    assert caught.value.field == flag
