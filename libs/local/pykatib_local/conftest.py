"""Local-mode test helpers: a session per test in a temporary work directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pykatib_local.session import LocalSession


@pytest.fixture()
def session(tmp_path: Path) -> Iterator[LocalSession]:
    with LocalSession(tmp_path / "work") as running:
        yield running
