"""The real test control plane, a real DB manager on a real MariaDB, and the controllers watching one namespace."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from e2e import controllers
from katib_dbmanager.server import DBManagerServer
from katib_dbmanager.storage import testing as storage_testing
from katib_testcluster.cluster import Cluster
from katib_testcluster.pytest_plugin import k8s_cluster, k8s_namespace

__all__ = ["k8s_cluster", "k8s_namespace"]

# Trial pods get this process's sys.path as PYTHONPATH (node agent) but run in their own
# directories: under Pants the source roots are relative, so make them absolute first.
sys.path[:] = [os.path.abspath(entry) if entry else entry for entry in sys.path]


@pytest.fixture(scope="session")
def db_manager() -> Iterator[DBManagerServer]:
    """A DB manager on a fresh MariaDB database (fails, with the start command, if MariaDB is down)."""
    with storage_testing.supply("mysql") as supply:
        server = DBManagerServer(supply.open(), listen_address="127.0.0.1:0").start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture()
def running_controllers(k8s_cluster: Cluster, db_manager: DBManagerServer, k8s_namespace: str) -> Iterator[str]:
    """Both controllers in-process (KopfRunner) for the test's namespace; yields the namespace."""
    with controllers.in_process(k8s_cluster, db_manager.address, k8s_namespace):
        yield k8s_namespace
    controllers.print_pod_logs(k8s_cluster, k8s_namespace)  # shown by pytest when the test failed
