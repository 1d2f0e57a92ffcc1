import os
import time
from pathlib import Path

import pytest

from katib_core import push_auth
from katib_core.push_keys import TokenMinter
from katib_pushauth.secret_file import SecretFile

FIRST = "first-secret-0123456789"
SECOND = "second-secret-0123456789"


def write(path: Path, text: str, *, age: float = 0.0) -> None:
    path.write_text(text)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))


def test_missing_or_empty_files_are_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the push secret file"):
        SecretFile(tmp_path / "missing")
    write(tmp_path / "empty", "# nothing\n")
    with pytest.raises(ValueError, match="holds no secret"):
        SecretFile(tmp_path / "empty")


def test_rotation_is_picked_up_and_a_broken_rewrite_keeps_the_old_secrets(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    write(path, FIRST + "\n", age=10)
    secrets = SecretFile(path, recheck_seconds=0)
    assert secrets.signing() == FIRST.encode()
    write(path, f"{SECOND}\n{FIRST}\n")
    assert secrets.secrets() == [SECOND.encode(), FIRST.encode()]
    write(path, "short\n", age=-5)
    assert secrets.signing() == SECOND.encode()
    path.unlink()
    assert secrets.signing() == SECOND.encode()


def test_a_rotated_file_re_mints_the_admin_token(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    write(path, FIRST + "\n", age=10)
    now = [1000.0]
    minter = TokenMinter(SecretFile(path, recheck_seconds=0), clock=lambda: now[0], admin_ttl=100)
    first = minter.admin_token()
    assert push_auth.verify(first, [FIRST.encode()], now=now[0]).is_admin
    now[0] = 1049
    assert minter.admin_token() == first
    now[0] = 1051
    second = minter.admin_token()
    assert second != first
    write(path, f"{SECOND}\n{FIRST}\n")
    third = minter.admin_token()
    assert third != second
    push_auth.verify(third, [SECOND.encode()], now=now[0])
