"""``AlgorithmRouter`` (what the experiment controller and local mode call) against the packaged
``katib-suggestion`` as a separate process: katib-config decides where each algorithm runs."""

from __future__ import annotations

import pytest
from katib_testsupport.processes import SuggestionProcess

from katib_core import katib_config, suggestions, testing
from katib_core.errors import ValidationError
from katib_core.suggestions import SuggestionRequest
from katib_suggest import Suggester
from katib_suggest.remote import RemoteSuggester, SuggestionServiceError
from katib_suggest.routing import AlgorithmRouter


def _config(text: str) -> katib_config.KatibConfig:
    return katib_config.loads(text)


def _request(name: str, algorithm: str, **settings: str) -> SuggestionRequest:
    experiment = testing.experiment(name, algorithm=algorithm, settings=settings or None)
    return SuggestionRequest(experiment, (), (), 2, key=suggestions.experiment_key(experiment))


def test_an_algorithm_with_an_endpoint_is_answered_by_that_service() -> None:
    service = SuggestionProcess()
    router = AlgorithmRouter(
        Suggester(), _config(f"runtime: {{suggestions: [{{algorithmName: tpe, endpoint: '{service.address}'}}]}}")
    )
    try:
        remote = router.suggest(_request("routed-remote", "tpe", random_state="7"))
        local = Suggester().suggest(_request("routed-remote", "tpe", random_state="7"))
        assert remote.assignments == local.assignments  # the same algorithm, over the wire
        router.suggest(_request("routed-local", "random", random_state="7"))  # no entry: in-process
    finally:
        router.close()
        service.stop()
    logged = service.stderr
    assert "GetSuggestions routed-remote (tpe)" in logged
    assert "routed-local" not in logged


def test_the_service_refusing_the_settings_is_a_validation_error_naming_the_setting() -> None:
    with SuggestionProcess() as proc:
        router = AlgorithmRouter(
            config=_config(f"runtime: {{suggestions: [{{algorithmName: tpe, endpoint: '{proc.address}'}}]}}")
        )
        try:
            with pytest.raises(ValidationError) as caught:
                router.suggest(_request("refused", "tpe", random_state="-1"))
            assert caught.value.field == "spec.algorithm.algorithmSettings.random_state"
        finally:
            router.close()


def test_an_endpoint_that_never_answers_is_a_service_error_not_a_verdict() -> None:
    router = AlgorithmRouter(
        config=_config("runtime: {suggestions: [{algorithmName: tpe, endpoint: '127.0.0.1:9'}]}"),
        remote=lambda address: RemoteSuggester(address, timeout=1.5),
    )
    try:
        with pytest.raises(SuggestionServiceError) as caught:
            router.suggest(_request("nobody", "tpe"))
        assert caught.value.code == "UNAVAILABLE"
    finally:
        router.close()


def test_an_image_only_entry_for_an_algorithm_we_lack_says_how_to_run_it() -> None:
    router = AlgorithmRouter(config=_config("runtime: {suggestions: [{algorithmName: enas, image: example/enas}]}"))
    with pytest.raises(ValidationError) as caught:
        router.check("enas")
    assert caught.value.field == "spec.algorithm.algorithmName"
    assert "endpoint: HOST:PORT" in caught.value.reason
    assert "example/enas" in caught.value.reason
    with pytest.raises(ValidationError, match="unknown algorithm name 'darts'"):
        router.suggest(_request("nas", "darts"))
    assert "enas" not in router.algorithms
    assert "tpe" in router.algorithms
