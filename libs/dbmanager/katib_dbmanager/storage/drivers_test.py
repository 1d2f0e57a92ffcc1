"""Driver failures the contract suite cannot provoke by itself, on the real databases."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest

from katib_core.errors import StorageUnavailableError
from katib_dbmanager import _native
from katib_dbmanager.storage import Query, testing
from katib_dbmanager.storage._mysql import MySQLDialect

#: Run with mysql-connector's C extension loaded (as the DB manager runs, see _native.py).
CEXT_PROBE = """
from _mysql_connector import MySQLInterfaceError
from katib_core.errors import StorageUnavailableError
from katib_dbmanager.storage._mysql import MySQLDialect
from katib_dbmanager.storage._urls import parse_url
dialect = MySQLDialect(parse_url("mysql://root@127.0.0.1:3306/x"))
mapped = dialect.translate(MySQLInterfaceError("Lost connection to MySQL server during query"))
print(type(mapped).__name__)
"""


def test_the_c_extensions_own_error_class_is_unavailable_not_unknown() -> None:
    # A MariaDB crash (the socket dies, no error packet) during COMMIT reaches us as the C
    # extension's own MySQLInterfaceError, unwrapped; it once escaped as gRPC UNKNOWN.
    env = _native.vendored_openssl_env()
    assert env is not None, "mysql-connector's vendored OpenSSL is missing"
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    done = subprocess.run([sys.executable, "-c", CEXT_PROBE], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "StorageUnavailableError"


def test_a_mysql_connection_killed_before_commit_is_unavailable() -> None:
    # The server's KILL (an error packet): the connector wraps this one itself.
    with testing.supply("mysql") as supply:
        supply.open()  # creates the schema
        dialect = MySQLDialect(supply.url)
        conn = dialect.connect()
        try:
            conn.cursor().execute(
                "INSERT INTO observation_logs (trial_name, time, metric_name, value) VALUES ('t', NOW(6), 'm', '1')"
            )
            supply.kill_connections()
            with pytest.raises(Exception) as raised:  # noqa: PT011 - the driver's class is the point
                conn.commit()
        finally:
            with contextlib.suppress(Exception):
                conn.close()
        assert isinstance(dialect.translate(raised.value), StorageUnavailableError), type(raised.value)


@pytest.mark.parametrize("mode", testing.MODES)
def test_names_with_nul_read_and_delete_nothing_on_every_backend(mode: str) -> None:
    with testing.supply(mode) as supply:
        store = supply.open()
        assert store.get(Query("a\x00b")) == []
        assert store.get(Query("a", metric_name="m\x00")) == []
        assert store.delete("a\x00b") == 0
        assert store.trial_namespace("a\x00b") is None
