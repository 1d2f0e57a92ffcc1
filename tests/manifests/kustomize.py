"""The shipped manifests as tests see them: kubectl (Debian's, fetched once), rendered kustomizations, Dockerfiles.

Paths are relative to the repository root, which is the working directory of a Pants test sandbox.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

INFRA = Path("infra")
INSTALL = INFRA / "install"
GET_KUBECTL = INFRA / "testcluster" / "get-kubectl.sh"
#: Where our images live; anything else in a Deployment is a third-party image (MySQL).
REGISTRY = "ghcr.io/pykatib/"
DOCKERFILE_GLOBS = ("services/*/Dockerfile", "infra/*/Dockerfile")

_TITLE = re.compile(r'org\.opencontainers\.image\.title="([^"]+)"')


def kubectl() -> Path:
    """kubectl from Debian's package (infra/testcluster/get-kubectl.sh caches it).

    Raises:
        RuntimeError: the script failed; the message has its output.
    """
    done = subprocess.run(["bash", str(GET_KUBECTL)], capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{GET_KUBECTL} failed ({done.returncode}):\n{done.stderr}")
    return Path(done.stdout.strip().splitlines()[-1])


def run(
    binary: Path, *args: str, kubeconfig: Path | None = None, stdin: str | None = None, timeout: float = 300
) -> str:
    """``kubectl ARGS``; its stdout, or AssertionError with both streams when it fails."""
    command = [str(binary), *args]
    if kubeconfig is not None:
        command[1:1] = ["--kubeconfig", str(kubeconfig)]
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def kustomizations() -> list[Path]:
    """Every buildable kustomization under infra/ (Components are built through an overlay)."""
    found = []
    for path in sorted(INFRA.rglob("kustomization.yaml")):
        if yaml.safe_load(path.read_text()).get("kind", "Kustomization") == "Kustomization":
            found.append(path.parent)
    return found


def build(binary: Path, directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize DIRECTORY`` as a list of objects."""
    return [doc for doc in yaml.safe_load_all(run(binary, "kustomize", str(directory))) if doc]


def find(objects: Sequence[Mapping[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of ``kind`` named ``name``; AssertionError if there is none."""
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return dict(obj)
    raise AssertionError(f"no {kind} {name} in {[(o['kind'], o['metadata']['name']) for o in objects]}")


def containers(objects: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(workload name, container)`` for every container of every Deployment and Job."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            spec = obj["spec"]["template"]["spec"]
            for container in [*spec.get("initContainers", ()), *spec["containers"]]:
                yield obj["metadata"]["name"], container


def repository(image: str) -> str:
    """``ghcr.io/pykatib/katib-webhook:v0.1.0`` → ``ghcr.io/pykatib/katib-webhook``."""
    name = image.split("@", 1)[0]
    head, _, tail = name.rpartition("/")
    return f"{head}/{tail.split(':', 1)[0]}" if head else tail.split(":", 1)[0]


@dataclass(frozen=True)
class Dockerfile:
    """One Dockerfile: its path, text and ``org.opencontainers.image.title``."""

    path: Path
    text: str
    title: str


def dockerfiles() -> dict[str, Dockerfile]:
    """Every Dockerfile of the repository, by image title.

    Raises:
        AssertionError: a Dockerfile has no title, or two share one.
    """
    found: dict[str, Dockerfile] = {}
    for pattern in DOCKERFILE_GLOBS:
        for path in sorted(Path().glob(pattern)):
            text = path.read_text()
            titles = _TITLE.findall(text)
            assert len(titles) == 1, f"{path}: expected one LABEL org.opencontainers.image.title, found {titles}"
            assert titles[0] not in found, f"{path} and {found[titles[0]].path} are both {titles[0]!r}"
            found[titles[0]] = Dockerfile(path, text, titles[0])
    return found


def instructions(text: str) -> list[tuple[str, str]]:
    """A Dockerfile's instructions as ``(KEYWORD, arguments)``, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for raw in joined.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found
