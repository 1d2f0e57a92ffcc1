"""Storage of metric logs behind one contract, with SQLite, MySQL/MariaDB and PostgreSQL backends."""

from __future__ import annotations

from katib_dbmanager.storage._base import ObservationStore, Query
from katib_dbmanager.storage._urls import DatabaseURL, from_katib_env, parse_url

__all__ = ["DatabaseURL", "ObservationStore", "Query", "from_katib_env", "open_store", "parse_url"]


def open_store(url: DatabaseURL | str, *, initialize: bool = True) -> ObservationStore:
    """Open the store a database URL names, creating the schema unless ``initialize`` is False.

    Raises:
        ValidationError: the URL is malformed or names an unknown option.
        StorageUnavailableError: the database cannot be reached.
        StorageError: the schema is missing (with ``initialize=False``) or cannot be created.
    """
    from katib_dbmanager.storage._sql import Dialect, SQLObservationStore

    if isinstance(url, str):
        url = parse_url(url)
    dialect: Dialect
    # Drivers are imported only for the backend in use: SQLite needs neither of the others.
    if url.scheme == "sqlite":
        from katib_dbmanager.storage._sqlite import SQLiteDialect

        dialect = SQLiteDialect(url)
    elif url.scheme == "mysql":
        from katib_dbmanager.storage._mysql import MySQLDialect

        dialect = MySQLDialect(url)
    else:
        from katib_dbmanager.storage._postgres import PostgresDialect

        dialect = PostgresDialect(url)
    return SQLObservationStore(dialect, initialize=initialize)
