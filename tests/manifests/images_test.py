"""Each service image's recipe, replayed without Docker on the service's real pex.

The build stage's ``RUN PEX_TOOLS=1 python3.11 /tmp/app.pex venv --compile /opt/app`` is run as
written (paths moved under a temp dir), then the final stage's ENTRYPOINT and CMD start the service
and its HEALTHCHECK command must report healthy. Only the base image is missing: a
python:3.11-slim here is this interpreter.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from katib_testsupport.pip import pip_env

from manifests import kustomize

SERVICES = [
    "katib-db-manager",
    "katib-webhook",
    "katib-experiment-controller",
    "katib-trial-controller",
    "katib-metrics-collector",
    "katib-suggestion",
]


def steps(title: str) -> list[tuple[str, str]]:
    return kustomize.instructions(kustomize.dockerfiles()[title].text)


def exec_form(arguments: str) -> list[str]:
    """A JSON-array (exec form) ENTRYPOINT/CMD/HEALTHCHECK CMD."""
    parsed = json.loads(arguments)
    assert isinstance(parsed, list), arguments
    return [str(part) for part in parsed]


@pytest.fixture(scope="module", params=SERVICES)
def image(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """``(title, root)``: the image's /opt/app built under ``root`` the way its Dockerfile builds it."""
    title = str(request.param)
    pex = Path(f"{title}.pex").absolute()
    assert pex.exists(), f"{pex}: run under Pants (runtime_package_dependencies)"
    root = tmp_path_factory.mktemp(title)
    copied = [args for keyword, args in steps(title) if keyword == "COPY" and args.startswith("dist/")]
    assert copied == [f"dist/{title}.pex /tmp/app.pex"]
    (run,) = (args for keyword, args in steps(title) if keyword == "RUN" and "PEX_TOOLS" in args)
    env_assignment, interpreter, *argv = shlex.split(run)
    assert (env_assignment, interpreter) == ("PEX_TOOLS=1", "python3.11")
    argv = [str(pex) if a == "/tmp/app.pex" else a.replace("/opt/app", str(root / "opt/app")) for a in argv]
    subprocess.run([sys.executable, *argv], env={**os.environ, "PEX_TOOLS": "1"}, check=True, timeout=600)
    return title, root


def entrypoint(title: str, root: Path) -> list[str]:
    (found,) = (args for keyword, args in steps(title) if keyword == "ENTRYPOINT")
    return [part.replace("/opt/app", str(root / "opt/app")) for part in exec_form(found)]


def healthcheck(title: str, root: Path, port: int, default_port: int) -> list[str]:
    (found,) = (args for keyword, args in steps(title) if keyword == "HEALTHCHECK")
    command = exec_form(found.split(" CMD ", 1)[1])
    return [part.replace("/opt/app", str(root / "opt/app")).replace(f":{default_port}", f":{port}") for part in command]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_entrypoint_runs(image: tuple[str, Path]) -> None:
    title, root = image
    assert (root / "opt/app/bin/python").exists(), "HEALTHCHECKs run the venv's python"
    done = subprocess.run(
        [*entrypoint(title, root), "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "usage" in (done.stdout + done.stderr).lower()


def test_the_default_cmd_parses(image: tuple[str, Path]) -> None:
    title, root = image
    cmd = [args for keyword, args in steps(title) if keyword == "CMD"]
    if not cmd:  # the sidecar: the webhook passes every argument
        assert title == "katib-metrics-collector"
        return
    done = subprocess.run(
        [*entrypoint(title, root), *exec_form(cmd[0]), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("title", "default_port", "args", "ready"),
    [
        ("katib-db-manager", 6789, ["--db-url", "sqlite:///{tmp}/katib.db"], "serving api.v1.beta1.DBManager"),
        ("katib-webhook", 8443, ["--host=127.0.0.1", "--cert-dir={tmp}/cert", "--standalone"], "serving on https://"),
        ("katib-suggestion", 6789, [], "serving api.v1.beta1.Suggestion"),
    ],
)
def test_the_healthcheck_passes_on_a_serving_container(
    title: str, default_port: int, args: list[str], ready: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp(f"{title}-run")
    pex = Path(f"{title}.pex").absolute()
    subprocess.run(
        [sys.executable, str(pex), "venv", "--compile", str(root / "opt/app")],
        env={**os.environ, "PEX_TOOLS": "1"},
        check=True,
        timeout=600,
    )
    port = free_port()
    listen = "--port={port}" if title == "katib-webhook" else "--listen-address=127.0.0.1:{port}"
    argv = [a.format(tmp=tmp_path, port=port) for a in [listen, *args]]
    server = subprocess.Popen([*entrypoint(title, root), *argv], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert ready in line, line
        done = subprocess.run(
            healthcheck(title, root, port, default_port), capture_output=True, text=True, timeout=30, check=False
        )
        assert done.returncode == 0, done.stderr
    finally:
        server.terminate()
        server.wait(30)


def test_the_trial_image_installs_pykatib_from_the_wheels(tmp_path: Path) -> None:
    """infra/trial-image: ``pip install --find-links /tmp/wheels pykatib`` (dependencies from the index)."""
    recipe = steps("pykatib-trial")
    assert ("COPY", "dist/*.whl /tmp/wheels/") in recipe
    (run,) = (args for keyword, args in recipe if keyword == "RUN" and "pip install" in args)
    install = shlex.split(run.split("&&")[0])
    assert install[:2] == ["pip", "install"]
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for wheel in Path().rglob("pykatib*.whl"):
        (wheels / wheel.name).write_bytes(wheel.read_bytes())
    assert {w.name.split("-")[0] for w in wheels.iterdir()} == {"pykatib", "pykatib_core"}
    env = pip_env()
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True, env=env, timeout=300)
    python = tmp_path / "venv" / "bin" / "python"
    argv = [str(wheels) if a == "/tmp/wheels" else a for a in install[2:]]
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # What a Push trial's script checks before it would fall back to pip (pykatib._tuning).
    subprocess.run([str(python), "-c", "import pykatib; pykatib.report_metrics"], check=True, timeout=120)


@pytest.mark.parametrize("image", ["katib-trial-controller"], indirect=True)  # the Job's image
def test_the_push_auth_init_job_command_runs_in_the_trial_controller_image(image: tuple[str, Path]) -> None:
    _, root = image
    install = kustomize.build(kustomize.kubectl(), kustomize.INSTALL)
    (container,) = kustomize.find(install, "Job", "katib-push-auth-init")["spec"]["template"]["spec"]["containers"]
    command = [part.replace("/opt/app", str(root / "opt/app")) for part in container["command"]]
    done = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "--namespace" in done.stdout
