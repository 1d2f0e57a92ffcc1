"""SQLite: the embedded default. One file (WAL mode) or a private in-memory database."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from katib_core import timestamps
from katib_core.errors import StorageError, StorageUnavailableError, ValidationError
from katib_dbmanager.storage._sql import INDEX, KEYS_INDEX, KEYS_TABLE, TABLE, Cursor, Dialect, DuplicateKeyError
from katib_dbmanager.storage._urls import DatabaseURL

_SYNCHRONOUS = {"full", "normal", "off", "extra"}
_memory_ids = itertools.count()


class SQLiteDialect(Dialect):
    """Times are stored as fixed-width ``YYYY-MM-DD HH:MM:SS.ffffff`` text, which sorts in time order."""

    placeholder = "?"
    max_params = 32_766

    def __init__(self, url: DatabaseURL) -> None:
        self._synchronous = url.options.get("synchronous", "full").lower()
        if self._synchronous not in _SYNCHRONOUS:
            raise ValidationError("--db-url", f"synchronous must be one of {sorted(_SYNCHRONOUS)}")
        timeout = url.options.get("busy_timeout", "30000")
        if not timeout.isdigit():
            raise ValidationError("--db-url", f"busy_timeout {timeout!r} is not a number of milliseconds")
        self._busy_timeout = int(timeout) / 1000
        self._memory = url.path == ":memory:"
        if self._memory:
            # One shared in-memory database per store; a single connection serialises access.
            self._target = f"file:pykatib-{next(_memory_ids)}-{id(self)}?mode=memory&cache=shared"
            self.pool_size = 1
            self._anchor: sqlite3.Connection | None = self.connect()
        else:
            self._target = url.path
            self.pool_size = 8
            self._anchor = None

    def connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self._target, timeout=self._busy_timeout, check_same_thread=False, uri=self._memory)
            if not self._memory:
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
        except sqlite3.Error as exc:
            raise StorageUnavailableError(f"cannot open SQLite database {self._target!r}: {exc}") from exc
        return conn

    def close(self) -> None:
        if self._anchor is not None:
            self._anchor.close()
            self._anchor = None

    def create_schema(self, cursor: Cursor) -> None:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (trial_name VARCHAR(255) NOT NULL, id INTEGER PRIMARY KEY,"
            " time TEXT, metric_name VARCHAR(255) NOT NULL, value TEXT NOT NULL)"
        )
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON {TABLE} (trial_name, metric_name, time)")
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {KEYS_TABLE} (report_key VARCHAR(64) NOT NULL PRIMARY KEY,"
            " created_at TEXT NOT NULL)"
        )
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {KEYS_INDEX} ON {KEYS_TABLE} (created_at)")

    def encode_time(self, moment: datetime) -> str:
        return (
            f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} "
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}"
        )

    def decode_time(self, value: Any) -> datetime:
        if value is None:
            return timestamps.ZERO_TIME
        return datetime.fromisoformat(value)

    def insert_many(
        self, cursor: Cursor, table: str, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        # In-process: executemany costs no round trips, and needs no variable-count limit.
        marks = ", ".join("?" * len(columns))
        cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def translate(self, exc: BaseException) -> BaseException | None:
        if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc):
            return DuplicateKeyError(str(exc))
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
            return StorageUnavailableError(f"SQLite is busy: {exc}")
        if isinstance(exc, sqlite3.Error):
            return StorageError(f"SQLite: {exc}")
        return None
