"""MySQL and MariaDB through mysql-connector-python (its C extension when present)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import mysql.connector
from mysql.connector import errors

from katib_core.errors import StorageError, StorageUnavailableError, ValidationError
from katib_dbmanager import _native
from katib_dbmanager.storage._sql import (
    INDEX,
    KEYS_INDEX,
    KEYS_TABLE,
    TABLE,
    Cursor,
    Dialect,
    DuplicateKeyError,
)
from katib_dbmanager.storage._sql import (
    chunks as _chunks,
)
from katib_dbmanager.storage._urls import DatabaseURL

# Server gone, lost, refusing, overloaded, deadlocked or shutting down: worth a retry later.
_TRANSIENT = {1040, 1053, 1205, 1213, 2002, 2003, 2005, 2006, 2013, 2055, 4031}
_DUPLICATE_ENTRY = 1062
_CEXT_ERRORS: tuple[type[BaseException], ...]
try:
    from _mysql_connector import MySQLInterfaceError

    _CEXT_ERRORS = (MySQLInterfaceError,)
except ImportError:  # no C extension: every error is a mysql.connector.errors.Error
    _CEXT_ERRORS = ()
_DUPLICATE_KEY_NAME = 1061
_log = logging.getLogger(__name__)


class MySQLDialect(Dialect):
    """Katib's own table layout; text columns compared exactly whatever the table's collation."""

    table_options = " DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

    def __init__(self, url: DatabaseURL) -> None:
        timeout = url.options.get("connect_timeout", "5")
        size = url.options.get("pool_size", "16")
        if not (timeout.isdigit() and size.isdigit() and int(size) > 0):
            raise ValidationError("--db-url", "connect_timeout and pool_size must be positive whole numbers")
        self.pool_size = int(size)
        self._kwargs: dict[str, Any] = {
            "user": url.user,
            "password": url.password,
            "database": url.database,
            "charset": "utf8mb4",
            "autocommit": False,
            "connection_timeout": int(timeout),
            "use_pure": not mysql.connector.HAVE_CEXT,
        }
        if not mysql.connector.HAVE_CEXT:
            _log.warning(
                "mysql-connector's C extension does not load (%s); using its slower pure-Python protocol",
                _native.cext_error(),
            )
        if "unix_socket" in url.options:
            self._kwargs["unix_socket"] = url.options["unix_socket"]
        else:
            self._kwargs.update(host=url.host, port=url.port)
        self._where = f"{url.host}:{url.port}/{url.database}"

    def connect(self) -> Any:
        try:
            return mysql.connector.connect(**self._kwargs)
        except errors.Error as exc:
            raise StorageUnavailableError(f"cannot connect to MySQL at {self._where}: {exc}") from exc

    def create_schema(self, cursor: Cursor) -> None:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (trial_name VARCHAR(255) NOT NULL,"
            " id INT AUTO_INCREMENT PRIMARY KEY, time DATETIME(6), metric_name VARCHAR(255) NOT NULL,"
            " value TEXT NOT NULL) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        )
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {KEYS_TABLE} (report_key VARCHAR(64) NOT NULL PRIMARY KEY,"
            f" created_at DATETIME(6) NOT NULL, INDEX {KEYS_INDEX} (created_at))"
            " DEFAULT CHARSET=ascii COLLATE=ascii_bin"
        )
        # MySQL 8.0 has no CREATE INDEX IF NOT EXISTS; look it up first.
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.STATISTICS"
            " WHERE table_schema = DATABASE() AND table_name = %s AND index_name = %s",
            (TABLE, INDEX),
        )
        (count,) = cursor.fetchone()
        if not count:
            try:
                cursor.execute(f"CREATE INDEX {INDEX} ON {TABLE} (trial_name, metric_name, time)")
            except errors.ProgrammingError as exc:
                if exc.errno != _DUPLICATE_KEY_NAME:  # another replica created it meanwhile
                    raise

    def insert_many(
        self, cursor: Cursor, table: str, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """Insert with literal values: text as hex literals, which need no escaping in any SQL mode.

        mysql-connector interpolates parameters in Python (a regex pass per placeholder); for
        thousands of values per statement that costs more than the insert itself. Hex literals
        (``X'…'``) carry the UTF-8 bytes exactly, whatever ``NO_BACKSLASH_ESCAPES`` says.
        """
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ".encode()
        literals: dict[Any, bytes] = {}
        for chunk in _chunks(rows, self.max_params // len(columns)):
            groups = []
            for row in chunk:
                parts = []
                for value in row:
                    literal = literals.get(value)
                    if literal is None:
                        literal = literals[value] = _literal(value)
                    parts.append(literal)
                groups.append(b"(" + b",".join(parts) + b")")
            cursor.execute(head + b",".join(groups))

    def equals(self, column: str) -> tuple[str, int]:
        # Katib's table takes the database's default collation, often case-insensitive and
        # space-padding; the second, binary test keeps matches exact while the first uses the index.
        return f"{column} = %s AND {column} = CAST(%s AS BINARY)", 2

    def translate(self, exc: BaseException) -> BaseException | None:
        if isinstance(exc, _CEXT_ERRORS):
            # The C extension's own class, which the connector does not wrap everywhere (a
            # connection lost during COMMIT): whether the commit happened is unknown, so the
            # caller must retry with its report key, which stores the report exactly once.
            return StorageUnavailableError(f"MySQL at {self._where}: {exc}")
        if not isinstance(exc, errors.Error):
            return None
        if isinstance(exc, errors.IntegrityError) and exc.errno == _DUPLICATE_ENTRY:
            return DuplicateKeyError(str(exc))
        if exc.errno in _TRANSIENT or isinstance(exc, errors.InterfaceError | errors.OperationalError):
            return StorageUnavailableError(f"MySQL at {self._where}: {exc.msg or exc}")
        return StorageError(f"MySQL at {self._where}: {exc.msg or exc}")


def _literal(value: Any) -> bytes:
    if isinstance(value, str):
        return b"X'" + value.encode().hex().encode() + b"'"
    if isinstance(value, datetime):
        return (
            f"'{value.year:04d}-{value.month:02d}-{value.day:02d} "
            f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}'"
        ).encode()
    raise TypeError(f"no SQL literal for {type(value).__name__}")
