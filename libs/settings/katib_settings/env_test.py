from pathlib import Path

import pytest
from pydantic import Field

from katib_core.errors import ValidationError
from katib_settings.env import EnvSettings


class _Env(EnvSettings):
    port: int = Field(8443, ge=0, le=65535, validation_alias="SOME_PORT")
    path: Path | None = Field(None, validation_alias="SOME_PATH")


def test_reads_the_given_mapping_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_PORT", "1")
    assert _Env.from_environ({}).port == 8443
    assert _Env.from_environ({"SOME_PORT": "9000", "some_port": "2", "PATH": "/bin"}) == _Env(SOME_PORT=9000)


def test_empty_is_unset() -> None:
    assert _Env.from_environ({"SOME_PORT": "", "SOME_PATH": ""}) == _Env()


@pytest.mark.parametrize("value", ["http", "70000"])
def test_errors_name_the_variable_in_one_line(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _Env.from_environ({"SOME_PORT": value})
    assert caught.value.field == "SOME_PORT"
    message = str(caught.value)
    assert message.startswith("SOME_PORT: ")
    assert repr(value) in message
    assert "\n" not in message
    assert "pydantic.dev" not in message
