"""PostgreSQL through psycopg 3; large inserts use COPY."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors

from katib_core.errors import StorageError, StorageUnavailableError, ValidationError
from katib_dbmanager.storage._sql import INDEX, KEYS_INDEX, KEYS_TABLE, TABLE, Cursor, Dialect, DuplicateKeyError
from katib_dbmanager.storage._urls import DatabaseURL

#: Below this many rows a multi-row INSERT beats COPY's extra round trips.
_COPY_THRESHOLD = 200
#: Serialises schema creation across replicas starting at once.
_SCHEMA_LOCK = 0x6B61746962  # "katib"


class PostgresDialect(Dialect):
    """Katib's PostgreSQL table layout (``serial`` id, ``TIMESTAMP(6)`` time)."""

    def __init__(self, url: DatabaseURL) -> None:
        timeout = url.options.get("connect_timeout", "5")
        size = url.options.get("pool_size", "16")
        if not (timeout.isdigit() and size.isdigit() and int(size) > 0):
            raise ValidationError("--db-url", "connect_timeout and pool_size must be positive whole numbers")
        self.pool_size = int(size)
        self._kwargs: dict[str, Any] = {
            "host": url.host,
            "port": url.port,
            "user": url.user,
            "password": url.password,
            "dbname": url.database,
            "sslmode": url.options.get("sslmode", "prefer"),
            "connect_timeout": int(timeout),
            "application_name": "katib-db-manager",
            "autocommit": False,
        }
        self._where = f"{url.host}:{url.port}/{url.database}"

    def connect(self) -> Any:
        try:
            return psycopg.connect(**self._kwargs)
        except psycopg.Error as exc:
            raise StorageUnavailableError(f"cannot connect to PostgreSQL at {self._where}: {exc}") from exc

    def create_schema(self, cursor: Cursor) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (trial_name VARCHAR(255) NOT NULL, id serial PRIMARY KEY,"
            " time TIMESTAMP(6), metric_name VARCHAR(255) NOT NULL, value TEXT NOT NULL)"
        )
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON {TABLE} (trial_name, metric_name, time)")
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {KEYS_TABLE} (report_key VARCHAR(64) NOT NULL PRIMARY KEY,"
            " created_at TIMESTAMP(6) NOT NULL)"
        )
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {KEYS_INDEX} ON {KEYS_TABLE} (created_at)")

    def insert_many(
        self, cursor: Cursor, table: str, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        if len(rows) < _COPY_THRESHOLD:
            super().insert_many(cursor, table, columns, rows)
            return
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def translate(self, exc: BaseException) -> BaseException | None:
        if not isinstance(exc, psycopg.Error):
            return None
        if isinstance(exc, errors.UniqueViolation):
            return DuplicateKeyError(str(exc))
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return StorageUnavailableError(f"PostgreSQL at {self._where}: {exc}")
        return StorageError(f"PostgreSQL at {self._where}: {exc}")
