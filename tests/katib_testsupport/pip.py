"""The environment tests run pip in: fresh venvs installing our wheels (and PyPI's) on this machine."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

#: The machine-wide pip config of the dev image pins a constraints file (docs/build.md).
PIP_ENV: Mapping[str, str] = {
    "XDG_CONFIG_DIRS": "/nonexistent",
    "PIP_CONFIG_FILE": "/dev/null",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}
#: The system CA bundle (it also trusts a TLS-intercepting proxy, which certifi's bundle does not).
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def pip_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with PIP_ENV, and the system CA unless PIP_CERT is set."""
    env = {**(os.environ if base is None else base), **PIP_ENV}
    if "PIP_CERT" not in env and SYSTEM_CA.exists():
        env["PIP_CERT"] = str(SYSTEM_CA)
    return env


def interpreter(version: str) -> Path:
    """CPython ``version`` (``"3.8"``) as pyenv installs it on these machines; a missing one fails the test."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = sorted(root.glob(f"versions/{version}.*/bin/python{version}"))
    if not found:
        pytest.fail(f"no CPython {version} under {root}/versions (pyenv install {version})", pytrace=False)
    return found[-1]
