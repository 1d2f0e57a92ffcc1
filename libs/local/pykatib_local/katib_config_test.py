"""Local mode with a katib-config: an algorithm given an ``endpoint`` is driven over gRPC by the
same experiment loop (here the packaged ``katib-suggestion``, started as a separate process); an
image-only entry for an algorithm pykatib lacks is refused before anything is stored."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from katib_testsupport.processes import SuggestionProcess

from katib_core.errors import ValidationError
from katib_core.models import Experiment
from katib_suggest import pbt
from pykatib_local import algorithms_e2e_test as examples
from pykatib_local import backend, cli
from pykatib_local.local_test import PUSH, conditions, experiment, run
from pykatib_local.session import KATIB_CONFIG_ENV, LocalSession


def _tpe(name: str) -> Experiment:
    exp = experiment(name, PUSH)
    assert exp.spec is not None
    exp.spec.algorithm = exp.spec.algorithm.model_copy(  # type: ignore[union-attr]
        update={"algorithm_name": "tpe", "algorithm_settings": None}
    )
    return exp


def test_an_algorithm_at_an_endpoint_runs_the_experiment_from_that_service(tmp_path: Path) -> None:
    with SuggestionProcess() as service:
        (tmp_path / "katib-config.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "config.kubeflow.org/v1beta1",
                    "kind": "KatibConfig",
                    "runtime": {"suggestions": [{"algorithmName": "tpe", "endpoint": service.address}]},
                }
            )
        )
        with LocalSession(tmp_path) as session:  # katib-config.yaml of the work directory
            final = run(session, _tpe("remote-tpe"))
        service.stop()
    assert conditions(final)[-1] == "Succeeded"
    assert final.status is not None
    assert final.status.trials_succeeded == 4
    assert "GetSuggestions remote-tpe (tpe)" in service.stderr


def test_an_image_only_entry_is_refused_with_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "elsewhere.yaml"
    config.write_text("runtime:\n  suggestions:\n    - algorithmName: enas\n      image: example/suggestion-enas\n")
    monkeypatch.setenv(KATIB_CONFIG_ENV, str(config))
    nas = experiment("nas", PUSH)
    nas.spec.algorithm.algorithm_name = "enas"  # type: ignore[union-attr]
    nas.spec.algorithm.algorithm_settings = None  # type: ignore[union-attr]
    with LocalSession(tmp_path / "work") as session:
        with pytest.raises(ValidationError) as caught:
            backend.prepare(nas, "default", router=session.suggester)
        assert caught.value.field == "spec.algorithm.algorithmName"
        assert "endpoint: HOST:PORT" in caught.value.reason
        assert session.store.list_experiments("default") == []


def test_the_cli_reads_katib_config_and_names_a_wrong_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "katib-config.yaml"
    config.write_text("runtime:\n  suggestions:\n    - image: example/x\n")
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(_tpe("cli-config").to_api()))
    code = cli.main(
        [
            "--workdir",
            str(tmp_path / "work"),
            "run",
            str(tmp_path / "exp.yaml"),
            "--local",
            "--katib-config",
            str(config),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "runtime.suggestions[0].algorithmName" in err
    assert "Traceback" not in err


def test_hyperband_and_pbt_keep_their_state_names_and_lineage_across_the_wire(tmp_path: Path) -> None:
    """Katib's hyperband and simple-pbt examples with both algorithms at the separate service: the
    state in the returned settings, the waits for a rung, PBT's names and labels all go through gRPC."""
    with SuggestionProcess() as service:
        entries = [{"algorithmName": name, "endpoint": service.address} for name in ("hyperband", "pbt")]
        config = tmp_path / "katib-config.yaml"
        config.write_text(yaml.safe_dump({"runtime": {"suggestions": entries}}))
        with LocalSession(tmp_path / "work", katib_config_file=config) as session:
            hyperband, trials, suggestion = examples.run(session, examples.hyperband_example())
            population, children, _ = examples.run(session, examples.pbt_example())
        service.stop()
    assert examples.succeeded_reason(hyperband) == "ExperimentSuggestionEndReached"
    by_name = {t.metadata.name: t for t in trials if t.metadata}
    issued = [by_name[a.name] for a in (suggestion.status.suggestions if suggestion.status else None) or []]
    assert [examples.values(t)["num-epochs"] for t in issued] == ["1", "1", "2", "2", "2"]
    settings = {s.name: s.value for s in (suggestion.status.algorithm_settings if suggestion.status else None) or []}
    assert settings["current_s"] == "-1"  # Katib's finished state came back from the service
    assert examples.succeeded_reason(population) == "ExperimentMaxTrialsReached"
    generations = sorted((t.metadata.labels or {}).get(pbt.GENERATION_LABEL, "") for t in children if t.metadata)
    assert generations == ["0"] * 5 + ["1"] * 5
    assert "GetSuggestions hyperband (hyperband)" in service.stderr
    assert "GetSuggestions simple-pbt (pbt)" in service.stderr
