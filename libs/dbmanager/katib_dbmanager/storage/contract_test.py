"""Runs the storage contract on every backend against real databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from katib_core.errors import StorageUnavailableError, ValidationError
from katib_core.observations import MetricPoint, Report
from katib_dbmanager.storage import ObservationStore, Query, open_store, parse_url, testing
from katib_dbmanager.storage.testing import StoreContract, Supply


@pytest.fixture(params=testing.MODES)
def supply(request: pytest.FixtureRequest) -> Iterator[Supply]:
    with testing.supply(request.param) as made:
        yield made


@pytest.fixture()
def store(supply: Supply) -> ObservationStore:
    return supply.open()


class TestStore(StoreContract):
    pass


@pytest.mark.parametrize("scheme", ["mysql", "postgresql"])
def test_adopts_a_table_created_by_katib(scheme: str) -> None:
    with testing.supply(scheme) as made:
        store = testing.katib_created_store(made)
        assert store.get(Query("katib-trial")) == [MetricPoint(datetime(2019, 2, 2, 19, 5, 6, 500000), "loss", "0.3")]
        store.append([testing.report("katib-trial", (0, "loss", "0.2"))])
        assert testing.values(store.get(Query("katib-trial", "loss"))) == ["0.3", "0.2"]
        indexes = testing.admin_execute(
            made.url,
            (
                "SELECT index_name FROM information_schema.STATISTICS WHERE table_schema = DATABASE()"
                " AND table_name = 'observation_logs'"
                if scheme == "mysql"
                else "SELECT indexname FROM pg_indexes WHERE tablename = 'observation_logs'"
            ),
        )
        assert "ix_observation_logs_trial_metric_time" in {row[0] for row in indexes}


@pytest.mark.parametrize("scheme", ["mysql", "postgresql"])
def test_katib_schema_without_initialization_works_without_keys(scheme: str) -> None:
    with testing.supply(scheme) as made:
        testing.admin_execute(made.url, testing.KATIB_DDL[scheme])
        store = made.open(initialize=False)
        key = testing.key()
        assert store.append([testing.report("t", (0, "loss", "1"), key=key)]) == [True]
        # No keys table: a retried report is stored again, exactly as Katib would.
        assert store.append([testing.report("t", (0, "loss", "1"), key=key)]) == [True]
        assert testing.values(store.get(Query("t"))) == ["1", "1"]
        store.append([Report("t", (), None, "team-a")])
        assert store.trial_namespace("t") is None
        tables = testing.admin_execute(
            made.url,
            "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'pykatib%'"
            + (" AND table_schema = DATABASE()" if scheme == "mysql" else ""),
        )
        assert tables == []


def test_katib_case_insensitive_table_still_matches_exactly() -> None:
    with testing.supply("mysql") as made:
        testing.admin_execute(
            made.url, testing.KATIB_DDL["mysql"] + " DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"
        )
        store = made.open()
        store.append([testing.report("trial", (0, "Loss", "1"), (1, "loss", "2"), (2, "loss ", "3"))])
        assert testing.values(store.get(Query("trial", "loss"))) == ["2"]
        assert store.get(Query("TRIAL")) == []
        assert store.delete("TRIAL") == 0


@pytest.mark.parametrize(
    "url",
    ["mysql://root@127.0.0.1:1/katib?connect_timeout=2", "postgresql://postgres@127.0.0.1:1/katib?connect_timeout=2"],
)
def test_unreachable_database_is_unavailable(url: str) -> None:
    with pytest.raises(StorageUnavailableError, match="127.0.0.1:1"):
        open_store(url)


def test_unwritable_sqlite_path_is_unavailable(tmp_path: object) -> None:
    with pytest.raises(StorageUnavailableError, match="cannot open SQLite"):
        open_store("sqlite:////nonexistent-dir/sub/katib.db")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://localhost/0", "scheme must be"),
        ("mysql://root@localhost:notaport/katib", "port"),
        ("mysql://root@localhost:3306", "name the database"),
        ("sqlite:///x.db?journal=wal", "unknown option 'journal'"),
        ("sqlite://host/x.db", "no host"),
    ],
)
def test_bad_urls_name_the_flag(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        parse_url(url)
    assert caught.value.field == "--db-url"


def test_urls_never_show_passwords() -> None:
    url = parse_url("mysql://katib:s3cret@db.example:3307/katib")
    assert "s3cret" not in str(url)
    assert "s3cret" not in repr(url)
    with pytest.raises(ValidationError) as caught:
        parse_url("mysql://katib:s3cret@db:bad/katib")
    assert "s3cret" not in str(caught.value)
