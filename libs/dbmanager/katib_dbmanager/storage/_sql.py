"""The SQL logic of the store, written once over a small per-database dialect.

``SQLObservationStore`` owns transactions, chunked inserts, idempotency keys and error mapping;
a ``Dialect`` supplies only what differs between SQLite, MySQL/MariaDB and PostgreSQL:
connecting, placeholders, DDL, time encoding and how the driver's errors read.
"""

from __future__ import annotations

import abc
import functools
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from katib_core import timestamps
from katib_core.errors import StorageError, StorageUnavailableError
from katib_core.observations import MetricPoint, Report
from katib_dbmanager.storage._base import ObservationStore, Query
from katib_dbmanager.storage._pool import Connection, Pool

_log = logging.getLogger(__name__)
T = TypeVar("T")
Cursor = Any
Row = tuple[str, Any, str, str]

TABLE = "observation_logs"
KEYS_TABLE = "pykatib_report_keys"
INDEX = "ix_observation_logs_trial_metric_time"
KEYS_INDEX = "ix_pykatib_report_keys_created_at"
COLUMNS = ("trial_name", "time", "metric_name", "value")
KEY_COLUMNS = ("report_key", "created_at")
#: The namespace of each trial whose reports were authenticated (first report wins).
NAMESPACES_TABLE = "pykatib_trial_namespaces"
NAMESPACE_COLUMNS = ("trial_name", "namespace")
#: Rows per INSERT statement, and the byte budget of one statement (MySQL's default
#: max_allowed_packet is 16 MiB; values may be 64 KiB each).
_CHUNK_ROWS = 1000
_CHUNK_BYTES = 4 << 20
_INSERT_ATTEMPTS = 3


def scoped_key(trial_name: str, key: str) -> str:
    """The stored form of a report key: bound to its trial, so another trial's report is never
    taken for a retry of this one. A SHA-256 hex digest: 64 characters, the key column's width."""
    return hashlib.sha256(f"{trial_name}\0{key}".encode("utf-8", "surrogatepass")).hexdigest()


class DuplicateKeyError(Exception):
    """Raised by ``Dialect.translate`` for a unique-key violation (a concurrent report)."""


class Dialect(abc.ABC):
    """What one database needs beyond standard SQL."""

    #: Parameter marker of the driver ("%s" or "?").
    placeholder = "%s"
    #: Most parameters one statement may carry.
    max_params = 65_535
    #: Connections in the pool.
    pool_size = 16
    #: Appended to CREATE TABLE statements written once for every dialect.
    table_options = ""

    @abc.abstractmethod
    def connect(self) -> Connection:
        """Open a new connection with autocommit off."""

    @abc.abstractmethod
    def create_schema(self, cursor: Cursor) -> None:
        """Create the tables and indexes if missing (idempotent, safe on Katib's own table)."""

    @abc.abstractmethod
    def translate(self, exc: BaseException) -> BaseException | None:
        """Map a driver error to StorageUnavailableError, StorageError or DuplicateKeyError.

        Return None for exceptions that are not the driver's.
        """

    def encode_time(self, moment: datetime) -> Any:
        """Turn naive UTC time into the driver's parameter value."""
        return moment

    def decode_time(self, value: Any) -> datetime:
        """Turn a fetched ``time`` column back into naive UTC time."""
        if value is None:
            return timestamps.ZERO_TIME
        if isinstance(value, datetime):
            return value.replace(tzinfo=None)
        raise StorageError(f"unexpected time value {value!r} in {TABLE}")

    def close(self) -> None:  # noqa: B027 - an optional hook; most dialects hold nothing
        """Release anything the dialect holds beyond pooled connections."""

    def equals(self, column: str) -> tuple[str, int]:
        """An exact, index-friendly equality test on ``column`` and how many parameters it takes."""
        return f"{column} = {self.placeholder}", 1

    def insert_many(
        self, cursor: Cursor, table: str, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """Insert ``rows`` into ``table`` with multi-row VALUES statements."""
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        for chunk in chunks(rows, self.max_params // len(columns)):
            cursor.execute(head + _values_clause(self.placeholder, len(columns), len(chunk)), _flatten(chunk))


class SQLObservationStore(ObservationStore):
    """An ObservationStore over any Dialect; see ``ObservationStore`` for the contract."""

    def __init__(self, dialect: Dialect, *, initialize: bool = True, pool_timeout: float = 30.0) -> None:
        self._dialect = dialect
        self._pool = Pool(lambda: _Session(dialect.connect()), size=dialect.pool_size, timeout=pool_timeout)
        self._delete_keys = f"DELETE FROM {KEYS_TABLE} WHERE created_at < {dialect.placeholder}"
        try:
            if initialize:
                self._run(dialect.create_schema)
                self._run(self._create_namespaces_table)
            self._run(self._check_schema)
            # A schema made by Katib and opened without initialization lacks our tables: store
            # reports as Katib does then, without de-duplicating retries or recording namespaces.
            self._keys_enabled = self._has_table(KEYS_TABLE, "retried reports will not be de-duplicated")
            self._namespaces_enabled = self._has_table(NAMESPACES_TABLE, "trial namespaces will not be recorded")
        except BaseException:
            self._pool.close()
            raise

    # -- the contract ------------------------------------------------------------------

    def append(self, reports: Sequence[Report]) -> list[bool]:
        for attempt in range(1, _INSERT_ATTEMPTS + 1):
            try:
                return self._run(lambda cursor: self._append(cursor, reports))
            except DuplicateKeyError:
                # Another writer committed one of these keys between our check and insert;
                # the next attempt sees it and skips that report.
                if attempt == _INSERT_ATTEMPTS:
                    raise StorageError("idempotency keys kept conflicting with concurrent writers") from None
        raise AssertionError("unreachable")

    def get(self, query: Query) -> list[MetricPoint]:
        if _unstorable(query.trial_name) or _unstorable(query.metric_name or ""):
            return []  # reports with NUL are refused, so nothing can match (PostgreSQL would fail)
        sql, params = self._select(query)

        def fetch(cursor: Cursor) -> list[MetricPoint]:
            cursor.execute(sql, params)
            decode = self._dialect.decode_time
            return [MetricPoint(decode(time), name, value) for time, name, value in cursor.fetchall()]

        return self._run(fetch)

    def delete(self, trial_name: str) -> int:
        if _unstorable(trial_name):
            return 0
        where, count = self._dialect.equals("trial_name")

        def remove(cursor: Cursor) -> int:
            cursor.execute(f"DELETE FROM {TABLE} WHERE {where}", (trial_name,) * count)
            deleted = int(cursor.rowcount)
            if self._namespaces_enabled:
                cursor.execute(f"DELETE FROM {NAMESPACES_TABLE} WHERE {where}", (trial_name,) * count)
            return deleted

        return self._run(remove)

    def trial_namespace(self, trial_name: str) -> str | None:
        if not self._namespaces_enabled or _unstorable(trial_name):
            return None
        where, count = self._dialect.equals("trial_name")

        def lookup(cursor: Cursor) -> str | None:
            cursor.execute(f"SELECT namespace FROM {NAMESPACES_TABLE} WHERE {where}", (trial_name,) * count)
            rows = cursor.fetchall()
            return str(rows[0][0]) if rows else None

        return self._run(lookup)

    def ping(self) -> None:
        self._run(lambda cursor: cursor.execute("SELECT 1") or cursor.fetchall())

    def purge_report_keys(self, older_than: datetime) -> int:
        def purge(cursor: Cursor) -> int:
            cursor.execute(self._delete_keys, (self._dialect.encode_time(older_than),))
            return int(cursor.rowcount)

        return self._run(purge)

    def close(self) -> None:
        self._pool.close()
        self._dialect.close()

    # -- internals ---------------------------------------------------------------------

    def _append(self, cursor: Cursor, reports: Sequence[Report]) -> list[bool]:
        if not self._keys_enabled:
            reports = [Report(r.trial_name, r.points, None, r.namespace) for r in reports]
        scoped = [scoped_key(r.trial_name, r.key) if r.key else None for r in reports]
        stored = self._stored_keys(cursor, [key for key in scoped if key])
        fresh: list[Report] = []
        fresh_keys: list[str] = []
        written: list[bool] = []
        for report, key in zip(reports, scoped, strict=True):
            if key is not None:
                if key in stored:
                    written.append(False)
                    continue
                stored.add(key)
                fresh_keys.append(key)
            fresh.append(report)
            written.append(True)
        encode = self._dialect.encode_time
        now = encode(timestamps.utc_now())
        keys = [(key, now) for key in fresh_keys]
        if keys:
            self._dialect.insert_many(cursor, KEYS_TABLE, KEY_COLUMNS, keys)
        rows = [(r.trial_name, encode(p.time), p.name, p.value) for r in fresh for p in r.points]
        for chunk in _row_chunks(rows):
            self._dialect.insert_many(cursor, TABLE, COLUMNS, chunk)
        if self._namespaces_enabled:
            self._record_namespaces(cursor, {r.trial_name: r.namespace for r in fresh if r.namespace})
        return written

    def _record_namespaces(self, cursor: Cursor, namespaces: dict[str, str]) -> None:
        known = self._existing(cursor, NAMESPACES_TABLE, "trial_name", list(namespaces))
        new = [(trial, namespace) for trial, namespace in namespaces.items() if trial not in known]
        if new:
            self._dialect.insert_many(cursor, NAMESPACES_TABLE, NAMESPACE_COLUMNS, new)

    def _stored_keys(self, cursor: Cursor, keys: list[str]) -> set[str]:
        return self._existing(cursor, KEYS_TABLE, "report_key", keys)

    def _existing(self, cursor: Cursor, table: str, column: str, values: list[str]) -> set[str]:
        """Which of ``values`` are in ``table.column`` (a primary key: exact after the recheck)."""
        found: set[str] = set()
        for chunk in chunks(values, min(self._dialect.max_params, _CHUNK_ROWS)):
            marks = ", ".join([self._dialect.placeholder] * len(chunk))
            cursor.execute(f"SELECT {column} FROM {table} WHERE {column} IN ({marks})", chunk)
            found.update(value for (value,) in cursor.fetchall())
        return found & set(values)

    def _select(self, query: Query) -> tuple[str, list[Any]]:
        d = self._dialect
        clause, count = d.equals("trial_name")
        where, params = [clause], [query.trial_name] * count
        if query.metric_name:
            clause, count = d.equals("metric_name")
            where.append(clause)
            params += [query.metric_name] * count
        if query.start is not None:
            where.append(f"time >= {d.placeholder}")
            params.append(d.encode_time(query.start))
        if query.end is not None:
            where.append(f"time <= {d.placeholder}")
            params.append(d.encode_time(query.end))
        sql = f"SELECT time, metric_name, value FROM {TABLE} WHERE {' AND '.join(where)} ORDER BY time, id"
        return sql, params

    def _check_schema(self, cursor: Cursor) -> None:
        # What Katib's db-manager checks with SKIP_DB_INITIALIZATION.
        cursor.execute(f"SELECT trial_name, id, time, metric_name, value FROM {TABLE} LIMIT 1")
        cursor.fetchall()

    def _create_namespaces_table(self, cursor: Cursor) -> None:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {NAMESPACES_TABLE} (trial_name VARCHAR(255) NOT NULL PRIMARY KEY,"
            f" namespace VARCHAR(255) NOT NULL){self._dialect.table_options}"
        )

    def _has_table(self, table: str, consequence: str) -> bool:
        def probe(cursor: Cursor) -> None:
            cursor.execute(f"SELECT * FROM {table} LIMIT 1")
            cursor.fetchall()

        try:
            self._run(probe)
        except StorageUnavailableError:
            raise
        except StorageError as exc:
            _log.warning("%s is missing (%s): %s", table, exc, consequence)
            return False
        return True

    def _run(self, work: Callable[[Cursor], T]) -> T:
        """Run ``work`` in one transaction and commit; map driver errors.

        A pooled connection that went stale while idle (the server restarted, say) fails on
        its first statement; that attempt is repeated once on a fresh connection, which is
        safe because nothing can have been committed.
        """
        try:
            return self._attempt(work, may_be_stale=True)
        except _StaleConnectionError as stale:
            _log.info("retrying on a fresh connection after: %s", stale.__cause__)
            self._pool.close_idle()
            return self._attempt(work, may_be_stale=False)

    def _attempt(self, work: Callable[[Cursor], T], *, may_be_stale: bool) -> T:
        committing = False
        with self._pool.connection() as (session, idle_since):
            try:
                result = work(session.cursor)
                committing = True
                session.conn.commit()
            except Exception as exc:
                mapped = self._dialect.translate(exc)
                if mapped is None:
                    raise
                if may_be_stale and idle_since > 0 and not committing and isinstance(mapped, StorageUnavailableError):
                    raise _StaleConnectionError() from mapped
                raise mapped from exc
        return result


class _Session:
    """A pooled connection with the one cursor it keeps for life.

    Drivers check the connection when a cursor is created (mysql-connector pings the server);
    keeping one cursor per connection saves that round trip on every transaction.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        try:
            self.cursor = conn.cursor()
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        try:
            self.cursor.close()
        finally:
            self.conn.close()


class _StaleConnectionError(Exception):
    """The first statement failed on a connection that had been idle in the pool."""


def _unstorable(text: str) -> bool:
    """Text no report can have stored: ``observations`` refuses NUL on every backend."""
    return "\x00" in text


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``items`` of at most ``size`` (and ``_CHUNK_ROWS``) items."""
    size = max(1, min(size, _CHUNK_ROWS))
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _row_chunks(rows: list[Row]) -> Iterator[list[Row]]:
    """Split rows into statements of at most ``_CHUNK_ROWS`` rows and about ``_CHUNK_BYTES``."""
    chunk: list[Row] = []
    size = 0
    for row in rows:
        chunk.append(row)
        size += len(row[0]) + len(row[2]) + len(row[3]) + 40
        if size >= _CHUNK_BYTES or len(chunk) == _CHUNK_ROWS:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


@functools.lru_cache(maxsize=64)
def _values_clause(placeholder: str, width: int, count: int) -> str:
    group = "(" + ", ".join([placeholder] * width) + ")"
    return ", ".join([group] * count)


def _flatten(rows: Iterable[tuple[Any, ...]]) -> list[Any]:
    return [value for row in rows for value in row]
