"""The storage contract as an importable test suite, and real databases to run it on.

``StoreContract`` holds tests that take a ``store`` fixture (and ``supply``, the supplier that
made it); ``contract_test.py`` parametrises them over every backend. ``provision`` creates a
uniquely named database on the real MariaDB/PostgreSQL of the machine and drops it afterwards;
when a server is not answering, the test **fails** with the command that starts it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from katib_core import observations, timestamps
from katib_core.errors import StorageError, StorageUnavailableError
from katib_core.observations import MetricPoint, Report
from katib_dbmanager.storage import ObservationStore, Query, open_store, parse_url
from katib_dbmanager.storage._sql import TABLE
from katib_dbmanager.storage._urls import DatabaseURL

MYSQL_ADMIN_URL = os.environ.get("PYKATIB_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/mysql")
POSTGRES_ADMIN_URL = os.environ.get("PYKATIB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
START_HINT = "run build-support/services.sh (it installs and starts MariaDB and PostgreSQL if they are missing)"
MODES = ["sqlite", "sqlite-memory", "mysql", "postgresql"]

# Katib's own DDL for the table (no index, no keys table): our store must adopt it as is.
KATIB_DDL = {
    "mysql": "CREATE TABLE IF NOT EXISTS observation_logs (trial_name VARCHAR(255) NOT NULL,"
    " id INT AUTO_INCREMENT PRIMARY KEY, time DATETIME(6), metric_name VARCHAR(255) NOT NULL,"
    " value TEXT NOT NULL)",
    "postgresql": "CREATE TABLE IF NOT EXISTS observation_logs (trial_name VARCHAR(255) NOT NULL,"
    " id serial PRIMARY KEY, time TIMESTAMP(6), metric_name VARCHAR(255) NOT NULL, value TEXT NOT NULL)",
}


def require_server(url: DatabaseURL, what: str) -> None:
    """Fail the test unless something listens at ``url``'s host and port."""
    try:
        with socket.create_connection((url.host, url.port), timeout=3):
            return
    except OSError as exc:
        pytest.fail(f"{what} is not answering at {url.host}:{url.port} ({exc}); {START_HINT}", pytrace=False)


def admin_execute(url: DatabaseURL, *statements: str) -> list[Any]:
    """Run statements on an autocommit admin connection; return the last one's rows."""
    rows: list[Any] = []
    conn: Any
    if url.scheme == "mysql":
        import mysql.connector

        conn = mysql.connector.connect(
            host=url.host, port=url.port, user=url.user, password=url.password, database=url.database
        )
        conn.autocommit = True
    else:
        import psycopg

        conn = psycopg.connect(
            host=url.host, port=url.port, user=url.user, password=url.password, dbname=url.database, autocommit=True
        )
    try:
        cursor = conn.cursor()
        for statement in statements:
            cursor.execute(statement)
            rows = cursor.fetchall() if cursor.description else []
        cursor.close()
    finally:
        conn.close()
    return rows


@contextlib.contextmanager
def provision(scheme: str) -> Iterator[DatabaseURL]:
    """Create an empty uniquely named database on the real server for ``scheme``; drop it after."""
    admin = parse_url(MYSQL_ADMIN_URL if scheme == "mysql" else POSTGRES_ADMIN_URL)
    require_server(admin, "MariaDB/MySQL" if scheme == "mysql" else "PostgreSQL")
    name = f"pykatib_t_{uuid.uuid4().hex[:12]}"
    admin_execute(admin, f"CREATE DATABASE {name}")
    try:
        yield DatabaseURL(
            scheme, user=admin.user, password=admin.password, host=admin.host, port=admin.port, database=name
        )
    finally:
        if scheme == "mysql":
            admin_execute(admin, f"DROP DATABASE IF EXISTS {name}")
        else:
            admin_execute(
                admin,
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
                f"DROP DATABASE IF EXISTS {name}",
            )


@dataclass
class Supply:
    """A store under test and what made it: reopen it, or cut its connections server-side."""

    mode: str
    url: DatabaseURL
    stores: list[ObservationStore] = field(default_factory=list)

    def open(self, *, initialize: bool = True) -> ObservationStore:
        store = open_store(self.url, initialize=initialize)
        self.stores.append(store)
        return store

    @property
    def persistent(self) -> bool:
        return self.mode != "sqlite-memory"

    def kill_connections(self) -> None:
        """Terminate every server-side session of this database (a server restart, seen by clients)."""
        if self.url.scheme == "mysql":
            admin = parse_url(MYSQL_ADMIN_URL)
            ids = admin_execute(
                admin, f"SELECT id FROM information_schema.PROCESSLIST WHERE db = '{self.url.database}'"
            )
            for (pid,) in ids:
                with contextlib.suppress(Exception):
                    admin_execute(admin, f"KILL {pid}")
        elif self.url.scheme == "postgresql":
            admin_execute(
                parse_url(POSTGRES_ADMIN_URL),
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{self.url.database}'"
                " AND pid <> pg_backend_pid()",
            )


@contextlib.contextmanager
def supply(mode: str) -> Iterator[Supply]:
    """Yield a Supply for ``mode`` (one of MODES) backed by a fresh, empty database."""
    if mode in ("sqlite", "sqlite-memory"):
        with tempfile.TemporaryDirectory(prefix="pykatib-store-") as tmp:
            path = ":memory:" if mode == "sqlite-memory" else str(Path(tmp) / "katib.db")
            made = Supply(mode, DatabaseURL("sqlite", path=path))
            try:
                yield made
            finally:
                for store in made.stores:
                    store.close()
        return
    with provision(mode) as url:
        made = Supply(mode, url)
        try:
            yield made
        finally:
            for store in made.stores:
                store.close()


# -- helpers for the tests -------------------------------------------------------------------

T0 = datetime(2024, 7, 29, 15, 9, 8)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def report(trial: str, *points: tuple[float, str, str], key: str | None = None) -> Report:
    return Report(trial, tuple(MetricPoint(at(s), n, v) for s, n, v in points), key)


def values(points: list[MetricPoint]) -> list[str]:
    return [p.value for p in points]


def key() -> str:
    return uuid.uuid4().hex


class StoreContract:
    """Behaviour every ObservationStore must show; each test gets a fresh, empty store."""

    # -- append and get ----------------------------------------------------------------

    def test_append_then_get_returns_points(self, store: ObservationStore) -> None:
        assert store.append([report("t1", (0, "loss", "0.5"), (0, "acc", "0.9"))]) == [True]
        assert store.get(Query("t1")) == [MetricPoint(T0, "loss", "0.5"), MetricPoint(T0, "acc", "0.9")]

    def test_append_nothing_is_a_no_op(self, store: ObservationStore) -> None:
        assert store.append([]) == []
        assert store.append([report("t1")]) == [True]
        assert store.get(Query("t1")) == []

    def test_get_unknown_trial_is_empty(self, store: ObservationStore) -> None:
        assert store.get(Query("nobody")) == []

    def test_get_filters_by_metric(self, store: ObservationStore) -> None:
        store.append([report("t1", (0, "loss", "1"), (1, "acc", "2"), (2, "loss", "3"))])
        assert values(store.get(Query("t1", "loss"))) == ["1", "3"]
        assert values(store.get(Query("t1", "acc"))) == ["2"]
        assert store.get(Query("t1", "missing")) == []

    def test_empty_metric_name_selects_all(self, store: ObservationStore) -> None:
        store.append([report("t1", (0, "loss", "1"), (1, "acc", "2"))])
        assert values(store.get(Query("t1", ""))) == ["1", "2"]

    def test_start_bound_is_inclusive(self, store: ObservationStore) -> None:
        store.append([report("t1", (0, "m", "a"), (1, "m", "b"), (2, "m", "c"))])
        assert values(store.get(Query("t1", start=at(1)))) == ["b", "c"]

    def test_end_bound_is_inclusive(self, store: ObservationStore) -> None:
        store.append([report("t1", (0, "m", "a"), (1, "m", "b"), (2, "m", "c"))])
        assert values(store.get(Query("t1", end=at(1)))) == ["a", "b"]

    def test_time_window(self, store: ObservationStore) -> None:
        store.append([report("t1", *[(s, "m", str(s)) for s in range(10)])])
        assert values(store.get(Query("t1", "m", at(3), at(5)))) == ["3", "4", "5"]
        assert store.get(Query("t1", start=at(6), end=at(5))) == []

    def test_window_bounds_have_microsecond_precision(self, store: ObservationStore) -> None:
        store.append([report("t1", (0.000001, "m", "a"), (0.000002, "m", "b"))])
        assert values(store.get(Query("t1", start=at(0.000002)))) == ["b"]
        assert values(store.get(Query("t1", end=at(0.000001)))) == ["a"]

    def test_rows_come_back_in_time_order(self, store: ObservationStore) -> None:
        store.append([report("t1", (5, "m", "five"), (1, "m", "one"))])
        store.append([report("t1", (3, "m", "three"))])
        assert values(store.get(Query("t1"))) == ["one", "three", "five"]

    def test_ties_keep_insertion_order_within_a_report(self, store: ObservationStore) -> None:
        store.append([report("t1", *[(0, "m", str(i)) for i in range(50)])])
        assert values(store.get(Query("t1"))) == [str(i) for i in range(50)]

    def test_ties_keep_insertion_order_across_reports(self, store: ObservationStore) -> None:
        for i in range(20):
            store.append([report("t1", (0, "m", str(i)))])
        assert values(store.get(Query("t1", "m"))) == [str(i) for i in range(20)]

    def test_year_one_sentinel_round_trips(self, store: ObservationStore) -> None:
        store.append([Report("t1", (MetricPoint(timestamps.ZERO_TIME, "loss", observations.UNAVAILABLE),))])
        store.append([report("t1", (0, "loss", "0.1"))])
        got = store.get(Query("t1", "loss"))
        assert got[0] == MetricPoint(datetime(1, 1, 1), "loss", "unavailable")
        assert values(got) == ["unavailable", "0.1"]
        assert values(store.get(Query("t1", start=timestamps.ZERO_TIME, end=timestamps.ZERO_TIME))) == ["unavailable"]

    def test_year_9999_round_trips(self, store: ObservationStore) -> None:
        last = datetime(9999, 12, 31, 23, 59, 59, 999999)
        store.append([Report("t1", (MetricPoint(last, "m", "v"),))])
        assert store.get(Query("t1")) == [MetricPoint(last, "m", "v")]

    def test_microseconds_are_kept(self, store: ObservationStore) -> None:
        moment = datetime(2024, 1, 2, 3, 4, 5, 678901)
        store.append([Report("t1", (MetricPoint(moment, "m", "v"),))])
        (point,) = store.get(Query("t1"))
        assert point.time == moment
        assert point.time.tzinfo is None

    def test_identical_rows_are_all_kept(self, store: ObservationStore) -> None:
        store.append([report("t1", (0, "m", "1"), (0, "m", "1"))])
        store.append([report("t1", (0, "m", "1"))])
        assert values(store.get(Query("t1"))) == ["1", "1", "1"]

    def test_trials_are_isolated(self, store: ObservationStore) -> None:
        store.append([report("t1", (0, "loss", "1")), report("t2", (0, "loss", "2"))])
        assert values(store.get(Query("t1", "loss"))) == ["1"]
        assert values(store.get(Query("t2", "loss"))) == ["2"]

    def test_trial_names_match_exactly(self, store: ObservationStore) -> None:
        store.append([report("trial", (0, "m", "lower")), report("Trial", (0, "m", "upper"))])
        store.append([report("trial ", (0, "m", "padded"))])
        assert values(store.get(Query("trial"))) == ["lower"]
        assert values(store.get(Query("Trial"))) == ["upper"]
        assert values(store.get(Query("trial "))) == ["padded"]

    def test_metric_names_match_exactly(self, store: ObservationStore) -> None:
        store.append([report("t1", (0, "Loss", "1"), (1, "loss", "2"), (2, "loss ", "3"), (3, "lóss", "4"))])
        assert values(store.get(Query("t1", "loss"))) == ["2"]
        assert values(store.get(Query("t1", "Loss"))) == ["1"]
        assert values(store.get(Query("t1", "loss "))) == ["3"]
        assert values(store.get(Query("t1", "lóss"))) == ["4"]

    @pytest.mark.parametrize("name", ["損失", "accuracy🎯", "σ²", "e\u0301", "a-b_c.d/e:f", "ß"])
    def test_unicode_metric_names(self, store: ObservationStore, name: str) -> None:
        store.append([report("t1", (0, name, "1"), (1, "ss", "2"))])
        assert store.get(Query("t1", name)) == [MetricPoint(T0, name, "1")]

    @pytest.mark.parametrize(
        "value", ["0.99", "1", "-7.53e-05", "tensor(0.1)", "unavailable", "", "  0.5 ", "NaN", "inf", "值🎯"]
    )
    def test_values_are_opaque_text(self, store: ObservationStore, value: str) -> None:
        store.append([report("t1", (0, "m", value))])
        assert values(store.get(Query("t1"))) == [value]

    def test_limits_round_trip(self, store: ObservationStore) -> None:
        trial, name, big = "t" * 255, "名" * 255, "v" * 65_535
        store.append([report(trial, (0, name, big), (1, "m", "é" * 32_767))])
        assert store.get(Query(trial, name)) == [MetricPoint(T0, name, big)]
        assert values(store.get(Query(trial, "m"))) == ["é" * 32_767]

    def test_big_report_is_stored_whole_and_in_order(self, store: ObservationStore) -> None:
        points = [(i * 0.001, f"m{i % 3}", str(i)) for i in range(20_500)]
        assert store.append([report("big", *points)]) == [True]
        got = store.get(Query("big"))
        assert len(got) == 20_500
        assert values(got) == [str(i) for i in range(20_500)]
        assert len(store.get(Query("big", "m1"))) == 20_500 // 3 + (1 if 20_500 % 3 > 1 else 0)

    def test_many_reports_in_one_call(self, store: ObservationStore) -> None:
        reports = [report(f"t{i % 7}", (i, "loss", str(i)), key=key() if i % 2 else None) for i in range(600)]
        assert store.append(reports) == [True] * 600
        assert sum(len(store.get(Query(f"t{i}"))) for i in range(7)) == 600

    # -- delete ------------------------------------------------------------------------

    def test_delete_removes_all_rows_of_the_trial(self, store: ObservationStore) -> None:
        store.append([report("t1", (0, "a", "1"), (1, "b", "2")), report("t2", (0, "a", "3"))])
        assert store.delete("t1") == 2
        assert store.get(Query("t1")) == []
        assert values(store.get(Query("t2"))) == ["3"]

    def test_delete_of_a_missing_trial_is_fine(self, store: ObservationStore) -> None:
        assert store.delete("never-reported") == 0

    def test_delete_matches_the_name_exactly(self, store: ObservationStore) -> None:
        store.append([report("trial", (0, "m", "1")), report("Trial", (0, "m", "2"))])
        assert store.delete("TRIAL") == 0
        assert store.delete("Trial") == 1
        assert values(store.get(Query("trial"))) == ["1"]

    def test_append_after_delete(self, store: ObservationStore) -> None:
        store.append([report("t1", (0, "m", "old"))])
        store.delete("t1")
        store.append([report("t1", (1, "m", "new"))])
        assert values(store.get(Query("t1"))) == ["new"]

    # -- idempotency keys --------------------------------------------------------------

    def test_a_repeated_key_is_stored_once(self, store: ObservationStore) -> None:
        k = key()
        assert store.append([report("t1", (0, "m", "1"), key=k)]) == [True]
        assert store.append([report("t1", (0, "m", "1"), key=k)]) == [False]
        assert values(store.get(Query("t1"))) == ["1"]

    def test_a_key_repeated_within_one_call_is_stored_once(self, store: ObservationStore) -> None:
        k = key()
        assert store.append([report("t1", (0, "m", "1"), key=k), report("t1", (0, "m", "1"), key=k)]) == [True, False]
        assert values(store.get(Query("t1"))) == ["1"]

    def test_reports_without_keys_are_never_deduplicated(self, store: ObservationStore) -> None:
        assert store.append([report("t1", (0, "m", "1")), report("t1", (0, "m", "1"))]) == [True, True]
        assert len(store.get(Query("t1"))) == 2

    def test_mixed_keys_in_one_call(self, store: ObservationStore) -> None:
        old = key()
        store.append([report("t1", (0, "m", "old"), key=old)])
        new = key()
        written = store.append(
            [report("t1", (1, "m", "x"), key=old), report("t1", (2, "m", "y"), key=new), report("t1", (3, "m", "z"))]
        )
        assert written == [False, True, True]
        assert values(store.get(Query("t1"))) == ["old", "y", "z"]

    def test_keys_are_scoped_to_their_trial(self, store: ObservationStore) -> None:
        # Another trial's report that happens to carry the same key is not a retry: it is stored.
        k = key()
        store.append([report("t1", (0, "m", "1"), key=k)])
        assert store.append([report("t2", (0, "m", "2"), key=k)]) == [True]
        assert store.append([report("t3", (0, "m", "3"), key=k), report("t3", (0, "m", "3"), key=k)]) == [True, False]
        assert store.append([report("t1", (0, "m", "1"), key=k)]) == [False]
        assert [values(store.get(Query(t))) for t in ("t1", "t2", "t3")] == [["1"], ["2"], ["3"]]

    def test_purged_keys_are_forgotten(self, store: ObservationStore) -> None:
        k = key()
        store.append([report("t1", (0, "m", "1"), key=k)])
        assert store.purge_report_keys(timestamps.utc_now() - timedelta(hours=1)) == 0
        assert store.append([report("t1", (0, "m", "1"), key=k)]) == [False]
        assert store.purge_report_keys(timestamps.utc_now() + timedelta(seconds=1)) == 1
        assert store.append([report("t1", (0, "m", "1"), key=k)]) == [True]
        assert len(store.get(Query("t1"))) == 2

    def test_many_keys_in_one_call(self, store: ObservationStore) -> None:
        keys = [key() for _ in range(2_500)]
        assert store.append([report("t1", (0, "m", "v"), key=k) for k in keys]) == [True] * 2_500
        assert store.append([report("t1", (0, "m", "v"), key=k) for k in keys]) == [False] * 2_500
        assert len(store.get(Query("t1"))) == 2_500

    # -- trial namespaces (authenticated reports) -----------------------------------------

    def test_the_first_namespaced_report_records_the_namespace(self, store: ObservationStore) -> None:
        assert store.trial_namespace("t1") is None
        store.append([report("t1", (0, "m", "1"))])
        assert store.trial_namespace("t1") is None
        store.append([Report("t1", (MetricPoint(T0, "m", "2"),), None, "team-a")])
        store.append([Report("t1", (MetricPoint(T0, "m", "3"),), None, "team-b")])
        assert store.trial_namespace("t1") == "team-a"
        assert store.trial_namespace("T1") is None

    def test_namespaces_in_one_call(self, store: ObservationStore) -> None:
        store.append([Report(f"t{i}", (MetricPoint(T0, "m", "1"),), None, f"ns{i % 2}") for i in range(5)])
        assert [store.trial_namespace(f"t{i}") for i in range(5)] == ["ns0", "ns1", "ns0", "ns1", "ns0"]

    def test_delete_forgets_the_namespace(self, store: ObservationStore) -> None:
        store.append([Report("t1", (MetricPoint(T0, "m", "1"),), None, "team-a")])
        store.delete("t1")
        assert store.trial_namespace("t1") is None
        store.append([Report("t1", (MetricPoint(T0, "m", "1"),), None, "team-b")])
        assert store.trial_namespace("t1") == "team-b"

    # -- atomicity and concurrency -----------------------------------------------------

    def test_a_failed_call_stores_nothing(self, store: ObservationStore, monkeypatch: pytest.MonkeyPatch) -> None:
        dialect = store._dialect  # type: ignore[attr-defined]
        real = dialect.insert_many
        calls = []

        def fail_on_third_chunk(*args: Any) -> None:
            calls.append(1)
            if len(calls) == 3:
                raise RuntimeError("injected failure after two chunks")
            real(*args)

        monkeypatch.setattr(dialect, "insert_many", fail_on_third_chunk)
        k = key()
        big = report("t1", *[(i, "m", str(i)) for i in range(2_500)], key=k)
        with pytest.raises(RuntimeError, match="injected"):
            store.append([report("t0", (0, "m", "other")), big])
        monkeypatch.setattr(dialect, "insert_many", real)
        assert store.get(Query("t1")) == []
        assert store.get(Query("t0")) == []
        assert store.append([big]) == [True]  # the key was not kept either
        assert len(store.get(Query("t1"))) == 2_500

    def test_concurrent_writers(self, store: ObservationStore) -> None:
        def write(worker: int) -> None:
            for i in range(40):
                store.append([report(f"w{worker}", (i, "loss", str(i)), key=key())])

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(write, range(8)))
        for worker in range(8):
            assert values(store.get(Query(f"w{worker}"))) == [str(i) for i in range(40)]

    def test_concurrent_duplicates_are_stored_once(self, store: ObservationStore) -> None:
        keys = [key() for _ in range(30)]
        barrier = threading.Barrier(4)

        def write(_: int) -> list[bool]:
            barrier.wait()
            return [store.append([report("t1", (0, "m", k), key=k)])[0] for k in keys]

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(write, range(4)))
        assert [sum(column) for column in zip(*results, strict=True)] == [1] * 30
        assert sorted(values(store.get(Query("t1")))) == sorted(keys)

    def test_results_are_snapshots(self, store: ObservationStore) -> None:
        store.append([report("t1", (0, "m", "1"))])
        got = store.get(Query("t1"))
        store.append([report("t1", (1, "m", "2"))])
        assert values(got) == ["1"]

    def test_reads_during_writes(self, store: ObservationStore) -> None:
        stop = threading.Event()
        seen: list[int] = []

        def read() -> None:
            while not stop.is_set():
                got = store.get(Query("t1"))
                assert values(got) == [str(i) for i in range(len(got))]
                seen.append(len(got))

        reader = threading.Thread(target=read)
        reader.start()
        try:
            for i in range(100):
                store.append([report("t1", (i, "m", str(i)))])
        finally:
            stop.set()
            reader.join()
        assert seen == sorted(seen)

    # -- lifecycle ---------------------------------------------------------------------

    def test_ping(self, store: ObservationStore) -> None:
        store.ping()

    def test_closed_store_is_unavailable(self, supply: Supply) -> None:
        store = supply.open()
        store.close()
        with pytest.raises(StorageUnavailableError):
            store.get(Query("t1"))

    def test_data_survives_reopening(self, supply: Supply) -> None:
        first = supply.open()
        first.append([report("t1", (0, "m", "1"))])
        first.close()
        # An in-memory database lives exactly as long as its store.
        assert values(supply.open().get(Query("t1"))) == (["1"] if supply.persistent else [])

    def test_schema_creation_is_idempotent(self, supply: Supply) -> None:
        first = supply.open()
        first.append([report("t1", (0, "m", "1"))])
        again = supply.open()
        assert values(again.get(Query("t1"))) == (["1"] if supply.persistent else [])
        assert values(first.get(Query("t1"))) == ["1"]

    def test_opening_without_initialization_needs_the_schema(self, supply: Supply) -> None:
        with pytest.raises(StorageError):
            supply.open(initialize=False)

    def test_recovers_after_the_server_drops_connections(self, store: ObservationStore, supply: Supply) -> None:
        store.append([report("t1", (0, "m", "1"))])
        supply.kill_connections()
        store.append([report("t1", (1, "m", "2"))])
        assert values(store.get(Query("t1"))) == ["1", "2"]
        supply.kill_connections()
        store.ping()


def katib_created_store(supply_: Supply) -> ObservationStore:
    """Create Katib's own table and a row written the way Katib writes it, then open our store."""
    ddl = KATIB_DDL[supply_.url.scheme]
    insert = (
        f"INSERT INTO {TABLE} (trial_name, time, metric_name, value) VALUES"
        " ('katib-trial', '2019-02-02 19:05:06.5', 'loss', '0.3')"
    )
    admin_execute(supply_.url, ddl, insert)
    return supply_.open()


class TcpProxy:
    """A loopback TCP forwarder in front of a real database, to cut and restore the link.

    ``cut()`` closes every proxied connection and refuses new ones, as a database crash looks
    to clients; ``restore()`` accepts connections again.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url_for(self, url: DatabaseURL) -> DatabaseURL:
        """``url`` redirected through this proxy."""
        return DatabaseURL(
            url.scheme,
            user=url.user,
            password=url.password,
            host="127.0.0.1",
            port=self.port,
            database=url.database,
            options={**url.options, "connect_timeout": "2"},
        )

    def cut(self) -> None:
        self._up.clear()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
