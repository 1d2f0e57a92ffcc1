from datetime import timedelta
from pathlib import Path

import pytest

from katib_core.errors import ValidationError
from katib_dbmanager.settings import Settings, parse_duration


def test_defaults() -> None:
    settings = Settings.from_args([], {})
    assert settings.listen_address == "0.0.0.0:6789"
    assert str(settings.db_url) == "sqlite:///katib.db"
    assert settings.initialize_schema
    assert settings.connect_timeout == 60
    assert settings.writers == 1
    assert settings.report_key_ttl == timedelta(hours=24)
    assert settings.max_message_bytes == 64 << 20


@pytest.mark.parametrize(("text", "size"), [("64Mi", 64 << 20), ("1G", 10**9), ("1048576", 1 << 20), ("-1", -1)])
def test_max_message_size_is_a_quantity(text: str, size: int) -> None:
    assert Settings.from_args(["--max-message-size", text], {}).max_message_bytes == size
    assert Settings.from_args([], {"KATIB_DB_MANAGER_MAX_MESSAGE_SIZE": text}).max_message_bytes == size


@pytest.mark.parametrize("text", ["lots", "1k5", "0.5Ki", "100", "4Gi"])
def test_bad_max_message_sizes_name_the_flag(text: str) -> None:
    with pytest.raises(ValidationError, match="--max-message-size"):
        Settings.from_args(["--max-message-size", text], {})


def test_flag_beats_env_beats_katib_env() -> None:
    env = {"KATIB_DB_URL": "postgresql://u@pg/katib", "DB_NAME": "mysql"}
    assert Settings.from_args(["--db-url", "sqlite:////tmp/x.db"], env).db_url.path == "/tmp/x.db"
    assert Settings.from_args([], env).db_url.host == "pg"
    assert Settings.from_args([], {"DB_NAME": "mysql"}).db_url.host == "katib-mysql"


def test_katib_mysql_env() -> None:
    env = {
        "DB_NAME": "mysql",
        "DB_PASSWORD": "test",
        "KATIB_MYSQL_DB_HOST": "db",
        "KATIB_MYSQL_DB_PORT": "3307",
        "KATIB_MYSQL_DB_DATABASE": "k",
    }
    url = Settings.from_args([], env).db_url
    assert (url.scheme, url.user, url.password, url.host, url.port, url.database) == (
        "mysql",
        "root",
        "test",
        "db",
        3307,
        "k",
    )
    assert Settings.from_args([], env).writers == 2


def test_katib_postgres_env() -> None:
    url = Settings.from_args([], {"DB_NAME": "postgres", "DB_PASSWORD": "katib"}).db_url
    assert (url.scheme, url.user, url.host, url.port, url.database) == (
        "postgresql",
        "katib",
        "katib-postgres",
        5432,
        "katib",
    )
    assert url.options["sslmode"] == "disable"


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"DB_NAME": "oracle"}, "DB_NAME"),
        ({"DB_NAME": "mysql", "KATIB_MYSQL_DB_PORT": "x"}, "KATIB_MYSQL_DB_PORT"),
        ({"KATIB_DB_URL": "nosuch://x"}, "KATIB_DB_URL"),
    ],
)
def test_bad_env_names_the_variable(env: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.from_args([], env)
    assert caught.value.field == field


@pytest.mark.parametrize(("value", "initialize"), [(None, True), ("false", True), ("true", False), ("1", False)])
def test_skip_db_initialization_follows_katib(value: str | None, initialize: bool) -> None:
    env = {} if value is None else {"SKIP_DB_INITIALIZATION": value}
    assert Settings.from_args([], env).initialize_schema is initialize


@pytest.mark.parametrize(
    ("text", "seconds"), [("60s", 60), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), ("15", 15), ("0.25", 0.25)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--x") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10 s", "1d", "-5s", "s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValidationError, match="--connect-timeout"):
        Settings.from_args([f"--connect-timeout={text}"], {})


@pytest.mark.parametrize("address", ["6789", "host", "host:port", "a b:1"])
def test_bad_listen_address(address: str) -> None:
    with pytest.raises(ValidationError, match="--listen-address"):
        Settings.from_args(["--listen-address", address], {})


def test_bad_flag_exits_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        Settings.from_args(["--no-such-flag"], {})
    assert caught.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_pykatib_env_variables(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("0123456789abcdef0123456789abcdef\n")
    env = {
        "KATIB_DB_MANAGER_AUTH_SECRET_FILE": str(secret),
        "LOG_LEVEL": "debug",
        "KATIB_DB_MANAGER_TLS_CERT_FILE": "",
        "KATIB_DB_URL": "",
    }
    settings = Settings.from_args([], env)
    assert (settings.auth_secret_file, settings.log_level, settings.tls_cert_file) == (secret, "DEBUG", None)
    assert str(settings.db_url) == "sqlite:///katib.db"
    assert Settings.from_args(["--log-level", "warning"], env).log_level == "WARNING"


def test_an_empty_skip_variable_skips_as_katibs_does() -> None:
    assert not Settings.from_args([], {"SKIP_DB_INITIALIZATION": ""}).initialize_schema
    assert not Settings.from_args(["--skip-db-initialization"], {}).initialize_schema


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"KATIB_DB_MANAGER_MAX_MESSAGE_SIZE": "lots"}, "KATIB_DB_MANAGER_MAX_MESSAGE_SIZE"),
        ({"KATIB_DB_MANAGER_AUTH_SECRET_FILE": "/does/not/exist"}, "KATIB_DB_MANAGER_AUTH_SECRET_FILE"),
    ],
)
def test_bad_pykatib_variables_name_themselves(env: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.from_args([], env)
    assert caught.value.field == field
    assert "pydantic" not in str(caught.value)


def test_a_bad_flag_wins_over_its_variable_in_the_message() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.from_args(["--auth-secret-file", "/nope"], {"KATIB_DB_MANAGER_AUTH_SECRET_FILE": "/also/nope"})
    assert caught.value.field == "--auth-secret-file"
