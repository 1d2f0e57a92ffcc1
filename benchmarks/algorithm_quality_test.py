"""A tiny algorithm-quality run in CI: every algorithm and its Optuna pair run through the loop's
requests and are scored (no quality asserted: that is the benchmark's job)."""

from algorithm_quality import hyperband_resource, main


def test_every_algorithm_runs_and_is_scored(capsys: object) -> None:
    status = main(["--seeds", "1", "--budget", "6", "--max-resource", "3", "--functions", "branin"])
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    for name in ("random", "grid", "tpe", "multivariate-tpe", "cmaes", "sobol", "bayesianoptimization"):
        assert f"  {name} " in out
    assert "  hyperband " in out
    assert "  pbt " in out
    assert "HyperbandPruner" in out
    assert status in (0, 1)  # 1: some median worse than random's, possible with one seed of 6 trials


def test_the_resource_budget_is_one_hyperband_pass() -> None:
    assert hyperband_resource(9) == 9 * 1 + 3 * 3 + 1 * 9 + 5 * 3 + 2 * 9 + 3 * 9  # docs/algorithms.md#hyperband
