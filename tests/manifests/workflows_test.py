"""The GitHub Actions workflows parse, have what GitHub requires, and name only paths that exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from manifests import kustomize

WORKFLOWS = Path(".github/workflows")
#: Repository paths a `run:` script may name (anything else is a command, a URL or an image).
_PATH = re.compile(r"(?<![\w./-])((?:\.ci|build-support|infra|libs|protos|services|tests|docs)/[\w./-]*\w)")
#: `pants package|test <target>`: a target is `dir:name` (or `dir/file.py`).
_TARGET = re.compile(r"(?<![\w./-])((?:libs|protos|services|tests|infra)/[\w./-]*):([\w-]+)")


def load(name: str) -> dict[Any, Any]:
    loaded = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def scripts(workflow: dict[Any, Any]) -> list[str]:
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]


def test_both_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS.glob("*.yaml")} >= {"ci.yaml", "e2e.yaml"}


@pytest.mark.parametrize("name", ["ci.yaml", "e2e.yaml"])
def test_workflow_has_what_github_requires(name: str) -> None:
    workflow = load(name)
    assert workflow["name"]
    # YAML 1.1 reads the key `on` as True.
    triggers: dict[str, Any] = workflow.get("on", workflow.get(True)) or {}
    assert {"push", "pull_request"} <= set(triggers)
    assert workflow["jobs"]
    for job_id, job in workflow["jobs"].items():
        assert re.fullmatch(r"[A-Za-z_][\w-]*", job_id)
        assert job["runs-on"].startswith("ubuntu-")
        assert isinstance(job["timeout-minutes"], int)
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), step
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+", step["uses"]), step["uses"]


@pytest.mark.parametrize("name", ["ci.yaml", "e2e.yaml"])
def test_paths_named_in_scripts_exist(name: str) -> None:
    for script in scripts(load(name)):
        for path in _PATH.findall(script):
            if ":" in path:
                continue
            assert Path(path.split(":")[0]).exists(), f"{name}: {path}"
        for directory, target in _TARGET.findall(script):
            build = Path(directory, "BUILD")
            assert build.exists(), f"{name}: {directory}:{target} has no BUILD"


def test_ci_runs_the_projects_test_command() -> None:
    assert ".ci/run" in "\n".join(scripts(load("ci.yaml")))
    assert Path(".ci/run").exists()


def test_e2e_builds_every_image_the_install_uses_and_loads_it_into_kind() -> None:
    workflow = load("e2e.yaml")
    text = "\n".join(scripts(workflow))
    tag = workflow["env"]["TAG"]
    registry = workflow["env"]["REGISTRY"]
    built = dict(re.findall(r"docker build -f (\S+) -t \"\$REGISTRY/([\w-]+):\$TAG\"", text))
    titles = {title: d.path for title, d in kustomize.dockerfiles().items()}
    assert {v: Path(k) for k, v in built.items()} == titles, "every Dockerfile is built, under its title"
    loaded = re.search(r"for image in ([^;]+);", text)
    assert loaded is not None
    assert set(loaded.group(1).replace("\\", " ").split()) == set(titles)
    install = yaml.safe_load((kustomize.INSTALL / "kustomization.yaml").read_text())
    for image in install["images"]:
        assert image["newTag"] == tag
        assert image["name"].removeprefix(f"{registry}/") in titles
    assert "kubectl apply -k infra/install" in text
    # Both installs: push tokens on (the default) and off (the official SDK's trials can push).
    installs = [entry["install"] for job in workflow["jobs"].values() for entry in job["strategy"]["matrix"]["include"]]
    assert sorted(installs) == ["infra/install", "infra/overlays/katib-compatible"]
    assert all((Path(i) / "kustomization.yaml").exists() for i in installs)
    kind = next(
        s for j in workflow["jobs"].values() for s in j["steps"] if s.get("uses", "").startswith("helm/kind-action")
    )
    assert re.fullmatch(r"kindest/node:v1\.(\d+)\.\d+", kind["with"]["node_image"])
    assert int(kind["with"]["node_image"].split(".")[1]) >= 31, "a current Kubernetes"


def test_e2e_runs_the_suite_and_dumps_logs_on_failure() -> None:
    workflow = load("e2e.yaml")
    steps = [s for j in workflow["jobs"].values() for s in j["steps"]]
    suite = next(s for s in steps if "tests/e2e" in s.get("run", ""))
    assert "KATIB_E2E_KUBECONFIG" in suite["env"]
    assert Path("tests/e2e/sdk_e2e_test.py").exists()
    dump = steps[-1]
    assert dump["if"] == "failure()"
    assert "kubectl -n kubeflow logs" in dump["run"]
