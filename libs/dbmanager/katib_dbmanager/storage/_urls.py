"""Database URLs: ``sqlite:///path``, ``mysql://user:pw@host:port/db``, ``postgresql://…``.

Also builds the URL from Katib's own environment variables (``DB_NAME``, ``DB_USER``, …), so a
Katib db-manager Deployment's env works unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from katib_core.errors import ValidationError

_SCHEMES = {
    "sqlite": "sqlite",
    "mysql": "mysql",
    "mariadb": "mysql",
    "postgresql": "postgresql",
    "postgres": "postgresql",
}
_OPTIONS = {
    "sqlite": {"synchronous", "busy_timeout"},
    "mysql": {"connect_timeout", "pool_size", "unix_socket"},
    "postgresql": {"connect_timeout", "pool_size", "sslmode"},
}
_DEFAULT_PORTS = {"mysql": 3306, "postgresql": 5432}


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed database URL. ``str()`` never shows the password."""

    scheme: str
    path: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    host: str = ""
    port: int = 0
    database: str = ""
    options: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        if self.scheme == "sqlite":
            return f"sqlite:///{self.path}"
        auth = quote(self.user, safe="") + (":***" if self.password else "")
        return f"{self.scheme}://{auth}@{self.host}:{self.port}/{self.database}"


def parse_url(text: str, *, field_name: str = "--db-url") -> DatabaseURL:
    """Parse a database URL; raise ValidationError naming ``field_name`` when it is bad."""
    parts = urlsplit(text)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ValidationError(field_name, f"{_redact(text)!r}: the scheme must be sqlite://, mysql:// or postgresql://")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - _OPTIONS[scheme])
    if unknown:
        raise ValidationError(
            field_name, f"unknown option {unknown[0]!r} for {scheme} (known: {', '.join(sorted(_OPTIONS[scheme]))})"
        )
    if scheme == "sqlite":
        if parts.netloc:
            raise ValidationError(
                field_name, "sqlite URLs have no host: use sqlite:///relative.db or sqlite:////abs.db"
            )
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        return DatabaseURL("sqlite", path=path or ":memory:", options=options)
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValidationError(field_name, f"{_redact(text)!r}: the port is not a number") from None
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ValidationError(field_name, f"{_redact(text)!r}: name the database, e.g. {scheme}://host/katib")
    return DatabaseURL(
        scheme,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        host=parts.hostname or "127.0.0.1",
        port=port,
        database=database,
        options=options,
    )


def from_katib_env(environ: Mapping[str, str]) -> DatabaseURL | None:
    """Build the URL Katib's db-manager would use from its env vars; None if ``DB_NAME`` is unset."""
    name = environ.get("DB_NAME", "")
    if not name:
        return None
    password = environ.get("DB_PASSWORD", "")
    if name == "mysql":
        return DatabaseURL(
            "mysql",
            user=environ.get("DB_USER", "root"),
            password=password,
            host=environ.get("KATIB_MYSQL_DB_HOST", "katib-mysql"),
            port=_port(environ, "KATIB_MYSQL_DB_PORT", "3306"),
            database=environ.get("KATIB_MYSQL_DB_DATABASE", "katib"),
        )
    if name == "postgres":
        return DatabaseURL(
            "postgresql",
            user=environ.get("DB_USER", "katib"),
            password=password,
            host=environ.get("KATIB_POSTGRESQL_DB_HOST", "katib-postgres"),
            port=_port(environ, "KATIB_POSTGRESQL_DB_PORT", "5432"),
            database=environ.get("KATIB_POSTGRESQL_DB_DATABASE", "katib"),
            options={"sslmode": environ.get("KATIB_POSTGRESQL_SSL_MODE", "disable")},
        )
    raise ValidationError("DB_NAME", f"{name!r} is not a database Katib knows: use 'mysql' or 'postgres'")


def _port(environ: Mapping[str, str], name: str, default: str) -> int:
    value = environ.get(name, default)
    if not value.isdigit():
        raise ValidationError(name, f"{value!r} is not a port number")
    return int(value)


def _redact(text: str) -> str:
    parts = urlsplit(text)
    if parts.password:
        return text.replace(f":{parts.password}@", ":***@", 1)
    return text
