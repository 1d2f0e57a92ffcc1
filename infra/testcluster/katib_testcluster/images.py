"""Which Python a container of the test node agent runs, by its image.

The agent has no container runtime: it runs a container's command as local processes. The image
still decides what `python`, `python3` and `pip` are, so that a trial on one of Katib's default
images runs on the Python that image really carries. Running everything on the agent's own
interpreter once hid a bug on Python 3.8.

Images (`docker.io/` and `library/` optional) and what their containers run with:

- `ghcr.io/pykatib/*`, `pykatib/*` (our services, the metrics-collector sidecar, `pykatib-trial`):
  the agent's interpreter, with its `sys.path` as PYTHONPATH, since these images carry our code;
- `python:3.X`, `python:3.X.Y`, `python:3.X-<variant>`: CPython 3.X from pyenv, in a plain venv;
- `tensorflow/tensorflow:2.13.0` (and `-gpu`): a CPython 3.8 venv with `grpcio==1.56.*`, as
  that image ships;
- `pytorch/pytorch:2.2.1-cuda12.1-cudnn8-runtime`: a CPython 3.10 venv;
- anything else: nothing. The container cannot run ("no interpreter for image …").

Only the interpreter and what pip sees are emulated. TensorFlow and PyTorch are not installed.
CPython comes from `$PYENV_ROOT` (default `~/.pyenv`), `versions/3.X.*/bin/python3.X`.

An image's venv is built once per machine under `${PYKATIB_CACHE:-~/.cache/pykatib}/images/`.
A file lock keeps concurrent agents from building it twice. Each container start gets a fresh
venv of its own that sees the image's packages through a `.pth` file, the way a container gets a
writable layer over its image, so what a trial pip-installs never reaches the shared venv.
`python`, `python3`, `pip` and `pip3` are that venv's, first on PATH, and PYTHONPATH is not set.
pip runs without the machine-wide pip configuration (it pins constraints and local wheels that no
image has), with the system CA bundle, and with one pip cache per machine to spare downloads.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

#: pip as an image's pip: none of this machine's pip configuration, no version check.
PIP_ENV: Mapping[str, str] = {
    "XDG_CONFIG_DIRS": "/nonexistent",
    "PIP_CONFIG_FILE": "/dev/null",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}
#: The system CA bundle (it also trusts a TLS-intercepting proxy, which pip's certifi does not).
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")
_BUILD_TIMEOUT_SECONDS = 900


class ImageError(Exception):
    """The agent cannot give a container of this image the Python the image carries."""


@dataclass(frozen=True)
class Carried:
    """What an image carries: CPython `python` ("3.8") with `requirements`, or (None) our code."""

    python: str | None
    requirements: tuple[str, ...] = ()


OURS = Carried(None)


@dataclass(frozen=True)
class _Rule:
    shown: str
    pattern: re.Pattern[str]
    carried: Carried | None  # None: CPython of the tag's `python` group


_RULES = (
    _Rule("ghcr.io/pykatib/*, pykatib/*", re.compile(r"(ghcr\.io/)?pykatib/[\w.-]+(:[\w.-]+)?"), OURS),
    _Rule("python:3.X[.Y][-variant]", re.compile(r"python:(?P<python>3\.\d+)(\.\d+)?(-[\w.-]+)?"), None),
    _Rule(
        "tensorflow/tensorflow:2.13.0[-gpu]",
        re.compile(r"tensorflow/tensorflow:2\.13\.0(-gpu)?"),
        Carried("3.8", ("grpcio==1.56.*",)),
    ),
    _Rule(
        "pytorch/pytorch:2.2.1-cuda12.1-cudnn8-runtime",
        re.compile(r"pytorch/pytorch:2\.2\.1-cuda12\.1-cudnn8-runtime"),
        Carried("3.10"),
    ),
)
KNOWN = tuple(rule.shown for rule in _RULES)


def carried_by(image: str) -> Carried:
    """What `image` carries, by the table above.

    Raises:
        ImageError: the table has no row for it.
    """
    name = normalize(image)
    for rule in _RULES:
        match = rule.pattern.fullmatch(name)
        if match:
            return rule.carried or Carried(match.group("python"))
    raise ImageError(f"the test node agent has no interpreter for image {image!r}; known: {', '.join(KNOWN)}")


def normalize(image: str) -> str:
    """`image` without a digest and without Docker Hub's implicit `docker.io/` and `library/`."""
    name = image.split("@", 1)[0]
    for prefix in ("docker.io/", "index.docker.io/"):
        name = name.removeprefix(prefix)
    return name.removeprefix("library/")


def cache_dir(environ: Mapping[str, str]) -> Path:
    """`${PYKATIB_CACHE:-~/.cache/pykatib}`, as build-support and controlplane use it."""
    return Path(environ.get("PYKATIB_CACHE") or Path(environ.get("HOME", "~")).expanduser() / ".cache/pykatib")


def pyenv_root(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("PYENV_ROOT") or Path(environ.get("HOME", "~")).expanduser() / ".pyenv")


def find_cpython(version: str, root: Path) -> Path:
    """The newest pyenv CPython `version` ("3.10") under `root`.

    Raises:
        ImageError: none is installed.
    """
    found = []
    for directory in root.glob(f"versions/{version}.*"):
        executable = directory / "bin" / f"python{version}"
        if re.fullmatch(rf"{re.escape(version)}\.\d+", directory.name) and executable.exists():
            found.append((tuple(int(part) for part in directory.name.split(".")), executable))
    if not found:
        raise ImageError(f"no CPython {version} under {root}/versions (pyenv install {version})")
    return max(found)[1]


@dataclass(frozen=True)
class _ImageVenv:
    path: Path
    interpreter: Path  # pyenv's
    python: str  # "3.8"

    @property
    def site_packages(self) -> Path:
        return self.path / "lib" / f"python{self.python}" / "site-packages"


class Environments:
    """The process environment of a container, by its image (see the module docstring).

    Args:
        ours: the environment of our images (the agent's interpreter and import path).
        plain: what every other image gets besides its venv (PATH without the agent's shims, locale).
        cache: the per-machine cache (`cache_dir()`).
        pyenv: where pyenv keeps its interpreters (`pyenv_root()`).
    """

    def __init__(self, *, ours: Mapping[str, str], plain: Mapping[str, str], cache: Path, pyenv: Path) -> None:
        self._ours = dict(ours)
        self._plain = dict(plain)
        self._cache = cache
        self._pyenv = pyenv

    def for_container(self, image: str, layer: Path) -> dict[str, str]:
        """The env of a container of `image`; a venv image's container gets a fresh venv at `layer`.

        Blocks while the image's venv is built (the first time on this machine: an image pull).

        Raises:
            ImageError: unknown image, missing interpreter, or a failed venv build.
        """
        carried = carried_by(image)
        if carried.python is None:
            return dict(self._ours)
        base = self._image_venv(image, carried.python, carried.requirements)
        _make_layer(base, layer, self._build_env())
        path = os.pathsep.join([str(layer / "bin"), self._plain.get("PATH", os.defpath)])
        return {**self._plain, **self._pip_env(), "PATH": path}

    def _pip_env(self) -> dict[str, str]:
        env = {**PIP_ENV, "PIP_CACHE_DIR": str(self._cache / "pip")}
        if SYSTEM_CA.exists():
            env["PIP_CERT"] = str(SYSTEM_CA)
        return env

    def _build_env(self) -> dict[str, str]:
        """This process's env without anything that would steer Python or pip elsewhere."""
        kept = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PEX", "PIP_", "VIRTUAL_ENV"))}
        return {**kept, **self._pip_env()}

    def _image_venv(self, image: str, python: str, requirements: tuple[str, ...]) -> _ImageVenv:
        interpreter = find_cpython(python, self._pyenv)
        name = f"cpython-{interpreter.parent.parent.name}"
        if requirements:
            name += "-" + hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:10]
        venv = _ImageVenv(self._cache / "images" / name, interpreter, python)
        ready = venv.path / ".ready"
        if ready.exists():
            return venv
        with _locked(venv.path.parent / f"{name}.lock"):
            if not ready.exists():  # another agent may have built it while we waited
                self._build(image, venv, requirements)
                ready.write_text("\n".join(requirements) + "\n")
        return venv

    def _build(self, image: str, venv: _ImageVenv, requirements: tuple[str, ...]) -> None:
        shutil.rmtree(venv.path, ignore_errors=True)  # a build that died half-way
        steps = [[str(venv.interpreter), "-m", "venv", str(venv.path)]]
        if requirements:
            pip = [str(venv.path / "bin" / "python"), "-m", "pip", "install", "--quiet", "--prefer-binary"]
            steps.append([*pip, *requirements])
        env = self._build_env()
        for argv in steps:
            done = _run(argv, env)
            if done.returncode != 0:
                shutil.rmtree(venv.path, ignore_errors=True)
                tail = (done.stdout or "")[-2000:]
                raise ImageError(f"building the venv of image {image!r} failed: {' '.join(argv)}\n{tail}")


def _make_layer(base: _ImageVenv, layer: Path, env: Mapping[str, str]) -> None:
    """A fresh venv at `layer` seeing `base`'s packages after its own; pip runs in it."""
    shutil.rmtree(layer, ignore_errors=True)
    done = _run([str(base.interpreter), "-m", "venv", "--without-pip", str(layer)], env)
    if done.returncode != 0:
        raise ImageError(f"creating the container's venv {layer} failed:\n{done.stdout[-2000:]}")
    site = layer / "lib" / f"python{base.python}" / "site-packages"
    (site / "_image.pth").write_text(f"{base.site_packages}\n")
    for name in ("pip", "pip3", f"pip{base.python}"):
        script = layer / "bin" / name
        script.write_text(f'#!/bin/sh\nexec "{layer / "bin" / "python"}" -m pip "$@"\n')
        script.chmod(0o755)


def _run(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=_BUILD_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageError(f"{' '.join(argv)}: {exc}") from exc


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created), across threads and processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
