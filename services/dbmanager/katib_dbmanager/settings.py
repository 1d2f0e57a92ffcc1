"""Command-line flags and environment of ``katib-db-manager``, read once into ``Settings``.

Precedence: flag > pykatib env var > Katib's env vars > default. Katib's own variables
(``DB_NAME``, ``DB_USER``, ``DB_PASSWORD``, ``KATIB_MYSQL_DB_*``, ``KATIB_POSTGRESQL_DB_*``,
``SKIP_DB_INITIALIZATION``) work, so the Deployment of a Katib install runs this image unchanged.
Flags are argparse's; pykatib's variables are ``DBManagerEnv``, a pydantic-settings model, so a
malformed one is an error naming it (docs/design.md).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from katib_core import quantities
from katib_core.errors import ValidationError
from katib_dbmanager.storage import DatabaseURL, from_katib_env, parse_url
from katib_settings.env import EnvSettings

DEFAULT_DB_URL = "sqlite:///katib.db"
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns))+|\d+(?:\.\d+)?")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


class DBManagerEnv(EnvSettings):
    """pykatib's variables (Katib's ``DB_*`` ones are read by ``from_katib_env``)."""

    # Katib skips initialization when SKIP_DB_INITIALIZATION is set to anything but "false", even "".
    model_config = SettingsConfigDict(env_ignore_empty=False)

    db_url: str | None = Field(None, validation_alias="KATIB_DB_URL")
    skip_db_initialization: str = Field("false", validation_alias="SKIP_DB_INITIALIZATION")
    max_message_size: str = Field("64Mi", validation_alias="KATIB_DB_MANAGER_MAX_MESSAGE_SIZE")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    auth_secret_file: Path | None = Field(None, validation_alias="KATIB_DB_MANAGER_AUTH_SECRET_FILE")
    tls_cert_file: Path | None = Field(None, validation_alias="KATIB_DB_MANAGER_TLS_CERT_FILE")
    tls_key_file: Path | None = Field(None, validation_alias="KATIB_DB_MANAGER_TLS_KEY_FILE")

    @field_validator("db_url", "auth_secret_file", "tls_cert_file", "tls_key_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("max_message_size")
    @classmethod
    def _a_message_size(cls, value: str) -> str:
        _message_bytes(value, "KATIB_DB_MANAGER_MAX_MESSAGE_SIZE")
        return value


@dataclass(frozen=True)
class Settings:
    """Everything the process needs, validated."""

    listen_address: str
    db_url: DatabaseURL
    initialize_schema: bool
    connect_timeout: float
    workers: int
    writers: int
    health_interval: float
    report_key_ttl: timedelta
    log_level: str
    max_message_bytes: int = 64 << 20
    auth_secret_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    @classmethod
    def from_args(cls, argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
        """Parse flags and env. argparse exits with status 2 and one line on a bad flag.

        Raises:
            ValidationError: a value is malformed; the error names the flag or variable.
        """
        args = _parser().parse_args(argv)
        env = DBManagerEnv.from_environ(environ)
        auth_secret_file = args.auth_secret_file or env.auth_secret_file
        tls_cert_file = args.tls_cert_file or env.tls_cert_file
        tls_key_file = args.tls_key_file or env.tls_key_file
        if (tls_cert_file is None) != (tls_key_file is None):
            raise ValidationError("--tls-cert-file", "--tls-cert-file and --tls-key-file go together")
        for flag, given, path in (
            ("--auth-secret-file", args.auth_secret_file, auth_secret_file),
            ("--tls-cert-file", args.tls_cert_file, tls_cert_file),
            ("--tls-key-file", args.tls_key_file, tls_key_file),
        ):
            if path is not None and not path.is_file():
                name = flag if given else "KATIB_DB_MANAGER_" + flag[2:].replace("-", "_").upper()
                raise ValidationError(name, f"{str(path)!r} is not a readable file")

        if args.db_url:
            url = parse_url(args.db_url, field_name="--db-url")
        elif env.db_url:
            url = parse_url(env.db_url, field_name="KATIB_DB_URL")
        else:
            url = from_katib_env(environ) or parse_url(DEFAULT_DB_URL)
        for name, value in (("--workers", args.workers), ("--writers", args.writers)):
            if value < 0:
                raise ValidationError(name, "must not be negative")
        if not re.fullmatch(r"(\[[0-9a-fA-F:]*\]|[^:\s]*):\d{1,5}", args.listen_address):
            raise ValidationError("--listen-address", f"{args.listen_address!r} is not HOST:PORT")
        return cls(
            listen_address=args.listen_address,
            db_url=url,
            initialize_schema=not (args.skip_db_initialization or env.skip_db_initialization != "false"),
            connect_timeout=parse_duration(args.connect_timeout, "--connect-timeout"),
            workers=args.workers or (os.cpu_count() or 1),
            writers=args.writers or (1 if url.scheme == "sqlite" else 2),
            health_interval=parse_duration(args.health_interval, "--health-interval"),
            report_key_ttl=timedelta(seconds=parse_duration(args.report_key_ttl, "--report-key-ttl")),
            log_level=(args.log_level or env.log_level).upper(),
            max_message_bytes=_message_bytes(args.max_message_size or env.max_message_size, "--max-message-size"),
            auth_secret_file=auth_secret_file,
            tls_cert_file=tls_cert_file,
            tls_key_file=tls_key_file,
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="katib-db-manager", description="Katib-compatible DB manager (gRPC api.v1.beta1.DBManager)."
    )
    add = parser.add_argument
    add("--listen-address", default="0.0.0.0:6789", help="HOST:PORT to serve on")
    add(
        "--db-url",
        help="sqlite:///PATH, mysql://USER:PW@HOST:PORT/DB or postgresql://…"
        f" (env KATIB_DB_URL; else Katib's DB_NAME variables; else {DEFAULT_DB_URL})",
    )
    add("--connect-timeout", default="60s", help="how long to wait for the database at start")
    add(
        "--skip-db-initialization",
        action="store_true",
        help="do not create tables, only check them (env SKIP_DB_INITIALIZATION != 'false')",
    )
    add("--workers", type=int, default=1, help="server processes sharing the port (one core each; 0: one per CPU)")
    add("--writers", type=int, default=0, help="group-commit writer threads (0: per backend)")
    add("--health-interval", default="2s", help="database probe interval")
    add("--report-key-ttl", default="24h", help="how long report idempotency keys are kept")
    add(
        "--max-message-size",
        help="largest request accepted, as a quantity (64Mi, 1G, 1048576; -1: no limit, as Katib)"
        " (env KATIB_DB_MANAGER_MAX_MESSAGE_SIZE, default 64Mi)",
    )
    add("--log-level", help="DEBUG, INFO, WARNING… (env LOG_LEVEL, default INFO)")
    add(
        "--auth-secret-file",
        type=Path,
        help="require push tokens signed with the secrets in this file (one per line; the first signs)"
        " (env KATIB_DB_MANAGER_AUTH_SECRET_FILE)",
    )
    add(
        "--tls-cert-file",
        type=Path,
        help="serve TLS with this PEM certificate (reloaded when it changes) (env KATIB_DB_MANAGER_TLS_CERT_FILE)",
    )
    add("--tls-key-file", type=Path, help="the PEM private key of --tls-cert-file (env KATIB_DB_MANAGER_TLS_KEY_FILE)")
    return parser


def _message_bytes(text: str, field: str) -> int:
    if text.strip() == "-1":
        return -1
    amount = quantities.parse(text.strip(), field=field)
    if amount < 1024 or amount != amount.to_integral_value() or amount >= 2**31:
        raise ValidationError(field, f"{text!r} must be a whole number of bytes from 1Ki to 2Gi, or -1")
    return int(amount)


def parse_duration(text: str, field: str) -> float:
    """Seconds in a Go duration (``60s``, ``1m30s``, ``500ms``) or a plain number of seconds."""
    text = text.strip()
    if not _DURATION.fullmatch(text):
        raise ValidationError(field, f"{text!r} is not a duration such as 60s, 1m30s or 500ms")
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    return sum(float(n) * _UNIT[unit] for n, unit in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)", text))
