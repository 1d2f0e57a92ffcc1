"""Every Experiment of Katib v0.19's ``examples/v1beta1`` gets Katib's own admission verdict from our
webhook (the algorithms we do not implement are denied naming ``spec.algorithm.algorithmName``), and
local mode accepts it or refuses it, naming the field, before anything is stored.

The Experiments are built from the fact table in ``katib_examples.py`` (no Katib file is read).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from conformance.katib_examples import (
    ALGORITHM,
    DEFAULT_KATIB_CONFIG,
    EXAMPLES,
    MATCHING_TRIAL_TEMPLATES,
    UNIMPLEMENTED,
    Example,
    Json,
    by_path,
    paths,
)
from katib_core.errors import ValidationError
from katib_core.models import Experiment
from katib_webhook import kube
from katib_webhook.admission import MUTATE_EXPERIMENT, VALIDATE_EXPERIMENT, Admission
from katib_webhook.settings import AdmissionSettings, Settings
from pykatib_local import backend, cli
from pykatib_local.session import LocalSession

SETTINGS = Settings.from_args(["--db-manager-address", "db.test:6789"], {}).admission


class Objects:
    """The cluster's objects the webhook may read, by (apiVersion, kind, namespace, name)."""

    def __init__(self, *objects: Json) -> None:
        self.objects = {
            (o["apiVersion"], o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects
        }

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Json | None:
        found = self.objects.get((api_version, kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None


def review_of(experiment: Json) -> bytes:
    """The AdmissionReview the API server sends on CREATE."""
    namespace = experiment["metadata"]["namespace"]
    return json.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": f"create-{namespace}-{experiment['metadata']['name']}",
                "kind": {"group": "kubeflow.org", "version": "v1beta1", "kind": "Experiment"},
                "resource": {"group": "kubeflow.org", "version": "v1beta1", "resource": "experiments"},
                "name": experiment["metadata"]["name"],
                "namespace": namespace,
                "operation": "CREATE",
                "userInfo": {"username": "admin"},
                "object": experiment,
            },
        }
    ).encode()


def admit(experiment: Json, config_maps: tuple[Json, ...] = (), *, settings: AdmissionSettings = SETTINGS) -> Json:
    """``/mutate-experiment``, then ``/validate-experiment`` on the patched object: the response."""
    admission = Admission(
        settings, reader=Objects(*config_maps), convert_batch_job=kube.batch_job_round_trip(kube.offline_client())
    )
    mutated: Json = asyncio.run(admission.review(MUTATE_EXPERIMENT, review_of(experiment)))["response"]
    assert mutated["allowed"], mutated  # defaulting never denies these
    ops = json.loads(base64.b64decode(mutated["patch"])) if "patch" in mutated else []
    defaulted = jsonpatch.apply_patch(experiment, ops)
    validated: Json = asyncio.run(admission.review(VALIDATE_EXPERIMENT, review_of(defaulted)))["response"]
    return validated


def fields_named(message: str) -> list[str]:
    """The fields a denial names: it is ``<field>: <reason>`` joined by ``; ``."""
    return re.findall(r"(?:^|; )((?:spec|metadata)[\w.\[\]-]*): ", message)


def test_the_table_holds_the_33_examples() -> None:
    assert len(EXAMPLES) == 33
    assert len(set(paths())) == 33
    assert {p.split("/")[0] for p in paths()} == {
        "argo",
        "early-stopping",
        "fpga",
        "hp-tuning",
        "kubeflow-trainer",
        "kubeflow-training-operator",
        "metrics-collector",
        "nas",
        "resume-experiment",
        "tekton",
        "trial-template",
    }


@pytest.mark.parametrize("example", EXAMPLES, ids=paths())
def test_our_expected_verdict_is_katibs_but_for_unimplemented_algorithms(example: Example) -> None:
    """The table's own consistency: what we expect of the webhook is Katib's verdict, except that an
    algorithm we lack is denied naming it (after Katib's own reason, when Katib denies too)."""
    katib, ours = example.katib, example.webhook
    if example.algorithm not in UNIMPLEMENTED:
        assert ours.allowed == katib.allowed
        assert ours.field == katib.field
        return
    assert not ours.allowed
    assert ALGORITHM in ours.fields
    if not katib.allowed:
        assert ours.field == katib.field
    else:
        assert ours.fields == (ALGORITHM,)


@pytest.mark.parametrize("example", EXAMPLES, ids=paths())
def test_the_webhook_gives_katibs_verdict(example: Example) -> None:
    response = admit(copy.deepcopy(example.experiment), example.config_maps)
    expected = example.webhook
    if expected.allowed:
        assert response["allowed"] is True, response.get("status")
        return
    assert response["allowed"] is False
    assert response["status"]["code"] == 400
    message = response["status"]["message"]
    assert message.startswith(f"{expected.field}: "), message
    assert fields_named(message) == list(expected.fields), message  # no other reason
    assert expected.saying in message


@pytest.fixture(scope="module")
def katib_default_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("katib-config") / "katib-config.yaml"
    path.write_text(yaml.safe_dump(DEFAULT_KATIB_CONFIG))
    return path


@pytest.mark.parametrize("example", EXAMPLES, ids=paths())
def test_with_katibs_default_katib_config_the_webhook_gives_katibs_verdict_on_every_example(
    example: Example, katib_default_config: Path
) -> None:
    """Katib's default katib-config names every algorithm of its examples (enas and darts too, as
    images to deploy): given it, our webhook's verdict is Katib's on all 33."""
    settings = Settings.from_args(
        ["--db-manager-address", "db.test:6789", "--katib-config", str(katib_default_config)], {}
    ).admission
    response = admit(copy.deepcopy(example.experiment), example.config_maps, settings=settings)
    assert response["allowed"] is example.katib.allowed, response.get("status")
    if not example.katib.allowed:
        assert response["status"]["message"].startswith(f"{example.katib.field}: ")


@pytest.mark.parametrize("algorithm", sorted(UNIMPLEMENTED))
def test_local_mode_with_that_config_says_how_to_run_katibs_nas_images(
    algorithm: str, katib_default_config: Path, tmp_path: Path
) -> None:
    example = next(e for e in EXAMPLES if e.algorithm == algorithm)
    with LocalSession(tmp_path, katib_config_file=katib_default_config) as session:
        with pytest.raises(ValidationError) as refused:
            backend.prepare(Experiment.from_api(copy.deepcopy(example.experiment)), "default", router=session.suggester)
        assert session.store.list_experiments() == []
    assert refused.value.field == ALGORITHM
    assert f"suggestion-{algorithm}" in refused.value.reason
    assert "endpoint: HOST:PORT" in refused.value.reason


@pytest.mark.parametrize("example", EXAMPLES, ids=paths())
def test_local_mode_accepts_or_refuses_naming_the_field(example: Example) -> None:
    experiment = Experiment.from_api(copy.deepcopy(example.experiment))
    expected = example.local
    if expected.allowed:
        prepared = backend.prepare(experiment, "default")
        assert prepared.metadata is not None
        assert prepared.metadata.namespace == example.namespace
        return
    with pytest.raises(ValidationError) as refused:
        backend.prepare(experiment, "default")
    error = refused.value
    assert error.field == expected.field, str(error)
    assert expected.saying in error.reason, str(error)
    every = getattr(error, "errors", (error,))
    assert [e.field for e in every] == list(expected.fields), str(error)


REFUSED_ON_THE_COMMAND_LINE = [
    "trial-template/trial-configmap-source",  # before the trial is looked at
    "kubeflow-training-operator/xgboostjob-lightgbm",  # the primary container has no command
    "early-stopping/median-stop",  # early stopping of a StdOut trial
    "hp-tuning/simple-pbt",  # Katib's rules (more failures allowed than trials)
]


@pytest.mark.parametrize("path", REFUSED_ON_THE_COMMAND_LINE)
def test_pykatib_run_refuses_in_one_line_and_stores_nothing(
    path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = by_path(path)
    assert not example.local.allowed
    spec = tmp_path / f"{path.replace('/', '-')}.yaml"
    spec.write_text(yaml.safe_dump(example.experiment))
    work = tmp_path / "work"

    assert cli.main(["--workdir", str(work), "run", str(spec), "--local", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert f"{example.local.field}: " in err
    assert example.local.saying in err
    assert "Traceback" not in err

    for namespace in (example.namespace, "default"):
        assert cli.main(["--workdir", str(work), "-n", namespace, "get", "experiments"]) == 0
        assert example.name not in capsys.readouterr().out
    with LocalSession(work) as session:
        assert session.store.list_experiments() == []


def test_the_configmap_example_is_admitted_when_the_template_uses_its_parameters() -> None:
    """Katib's verdict on it depends on the ConfigMap: with a template that substitutes
    learningRate, numberLayers and optimizer (as Katib's before v0.17 did), both admit it."""
    example = by_path("trial-template/trial-configmap-source")
    assert admit(copy.deepcopy(example.experiment), (MATCHING_TRIAL_TEMPLATES,))["allowed"] is True
    assert "numberLayers" not in json.dumps(example.config_maps)  # the installed one: denied above
    response: dict[str, Any] = admit(copy.deepcopy(example.experiment))  # no ConfigMap at all
    assert response["status"]["message"] == (
        "spec.trialTemplate.configMap: ConfigMap kubeflow/trial-templates not found"
    )
