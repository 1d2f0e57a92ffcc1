"""The image table, pyenv lookup and per-machine venvs of `images`, without a cluster (real pyenv CPython)."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from katib_testcluster import images
from katib_testcluster.images import Carried, Environments, ImageError


@pytest.mark.parametrize(
    ("image", "carried"),
    [
        ("ghcr.io/pykatib/katib-webhook:v0.1.0", images.OURS),
        ("ghcr.io/pykatib/pykatib-trial:v0.1.0", images.OURS),
        ("docker.io/pykatib/katib-metrics-collector:v0.1.0", images.OURS),  # the webhook's default sidecar
        ("python:3.11-slim", Carried("3.11")),
        ("docker.io/library/python:3.11-slim", Carried("3.11")),
        ("python:3.8", Carried("3.8")),
        ("python:3.12.1-slim-bookworm@sha256:" + "0" * 64, Carried("3.12")),
        ("tensorflow/tensorflow:2.13.0", Carried("3.8", ("grpcio==1.56.*",))),
        ("docker.io/tensorflow/tensorflow:2.13.0", Carried("3.8", ("grpcio==1.56.*",))),
        ("docker.io/tensorflow/tensorflow:2.13.0-gpu", Carried("3.8", ("grpcio==1.56.*",))),
        ("pytorch/pytorch:2.2.1-cuda12.1-cudnn8-runtime", Carried("3.10")),
        ("docker.io/pytorch/pytorch:2.2.1-cuda12.1-cudnn8-runtime", Carried("3.10")),
    ],
)
def test_the_table(image: str, carried: Carried) -> None:
    assert images.carried_by(image) == carried


@pytest.mark.parametrize(
    "image",
    [
        "ignored",
        "",
        "python:3",
        "python:latest",
        "tensorflow/tensorflow:2.15.0",
        "docker.io/pytorch/pytorch:2.5.0-cuda12.4-cudnn9-runtime",
        "docker.io/kubeflowkatib/tfevent-metrics-collector:v0.18.0",
        "ghcr.io/someone/pykatib/x:1",
    ],
)
def test_any_other_image_has_no_interpreter(image: str) -> None:
    with pytest.raises(ImageError) as caught:
        images.carried_by(image)
    assert str(caught.value) == (
        f"the test node agent has no interpreter for image {image!r}; known: ghcr.io/pykatib/*, pykatib/*,"
        " python:3.X[.Y][-variant], tensorflow/tensorflow:2.13.0[-gpu], pytorch/pytorch:2.2.1-cuda12.1-cudnn8-runtime"
    )


def test_the_newest_patch_release_of_pyenv_is_used(tmp_path: Path) -> None:
    for name in ("3.10.9", "3.10.13", "3.10.2-debug", "3.1.0"):
        executable = tmp_path / "versions" / name / "bin" / "python3.10"
        executable.parent.mkdir(parents=True)
        executable.touch()
    assert images.find_cpython("3.10", tmp_path) == tmp_path / "versions/3.10.13/bin/python3.10"
    with pytest.raises(ImageError, match=r"no CPython 3.9 under .* \(pyenv install 3.9\)"):
        images.find_cpython("3.9", tmp_path)


def environments(cache: Path, pyenv: Path | None = None) -> Environments:
    return Environments(
        ours={"PATH": "/shims:/usr/bin", "PYTHONPATH": "/sandbox"},
        plain={"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8"},
        cache=cache,
        pyenv=pyenv or images.pyenv_root(os.environ),
    )


def test_our_images_get_the_agents_environment(tmp_path: Path) -> None:
    env = environments(tmp_path).for_container("ghcr.io/pykatib/katib-trial-controller:v0.1.0", tmp_path / "layer")
    assert env == {"PATH": "/shims:/usr/bin", "PYTHONPATH": "/sandbox"}
    assert not (tmp_path / "layer").exists()


def test_a_missing_interpreter_is_named(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"no CPython 3.10 under .*/no-pyenv/versions \(pyenv install 3.10\)"):
        environments(tmp_path / "cache", tmp_path / "no-pyenv").for_container(
            "pytorch/pytorch:2.2.1-cuda12.1-cudnn8-runtime", tmp_path / "l"
        )


def test_a_python_image_gets_a_venv_built_once_and_a_layer_per_container(tmp_path: Path) -> None:
    envs = environments(tmp_path / "cache")
    built: list[str] = []
    build = Environments._build

    def counting(self: Environments, image: str, venv: object, requirements: tuple[str, ...]) -> None:
        built.append(image)
        build(self, image, venv, requirements)  # type: ignore[arg-type]

    layers = [tmp_path / f"layer{i}" for i in range(3)]
    results: list[dict[str, str]] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Environments, "_build", counting)
        threads = [
            threading.Thread(target=lambda layer=layer: results.append(envs.for_container("python:3.9", layer)))
            for layer in layers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(600)

    assert built == ["python:3.9"]  # three containers at once, one build
    (venv,) = (p for p in (tmp_path / "cache" / "images").glob("cpython-3.9.*") if p.is_dir())
    assert (venv / ".ready").exists()
    assert len(results) == 3
    env = results[0]
    assert "PYTHONPATH" not in env
    assert env["PIP_CONFIG_FILE"] == "/dev/null"
    assert env["PIP_CACHE_DIR"] == str(tmp_path / "cache" / "pip")
    layer = Path(env["PATH"].split(os.pathsep)[0]).parent
    assert layer in layers
    code = "import sys, sysconfig; print(sys.version_info[:2] == (3, 9), sysconfig.get_paths()['purelib'])"
    for command in (["python", "-c", code], ["python3", "-c", code]):
        out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
        assert out == f"True {layer}/lib/python3.9/site-packages\n"
    # pip is the image's, through the layer: it installs into the layer.
    pip = subprocess.run(["pip", "--version"], env=env, capture_output=True, text=True, check=True).stdout
    assert f"{venv}/lib/python3.9/site-packages/pip" in pip
