"""A tiny push-vs-pull run in CI: both modes' trials succeed through the real webhook, sidecar,
controllers and DB manager, and every measurement is taken (no timing asserted)."""

import json
from pathlib import Path

from push_vs_pull_bench import main


def test_both_modes_run_and_are_measured(tmp_path: Path, capsys: object) -> None:
    out_json = tmp_path / "result.json"

    # Two seconds of training: long enough for the sampler to see every container's process
    # (at 0.15 s a Pod could finish between two samples and count one process).
    status = main(
        ["--trials", "2", "--parallel", "2", "--steps", "4", "--step-seconds", "0.5", "--json", str(out_json)]
    )

    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert status == 0, out
    assert "| emission -> Trial status p95 s" in out
    summary = json.loads(out_json.read_text())["summary"]
    push, pull = summary["Push"], summary["StdOut"]
    assert (push["trials"], pull["trials"]) == (2, 2)
    assert (push["containers"], pull["containers"]) == (1, 2)
    assert (push["sidecar"], pull["sidecar"]) == (None, "metrics-logger-and-collector")
    assert pull["processes"] > push["processes"] >= 1
    assert pull["sidecar_cpu_s"] > 0
    assert pull["sidecar_rss_mib"] > 0
    for mode in (push, pull):
        assert mode["db_latency_s"]["n"] == mode["status_latency_s"]["n"] == 2
        assert 0 < mode["db_latency_s"]["p50"] <= mode["status_latency_s"]["p95"]
