"""``katib-db-manager``: parse settings, wait for the database, serve until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType

from katib_core.errors import StorageError, StorageUnavailableError, ValidationError
from katib_dbmanager.server import DBManagerServer
from katib_dbmanager.settings import Settings
from katib_dbmanager.storage import ObservationStore, open_store

_log = logging.getLogger("katib_dbmanager")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the DB manager; return the process exit status."""
    try:
        settings = Settings.from_args(sys.argv[1:] if argv is None else argv, os.environ)
    except ValidationError as exc:
        print(f"katib-db-manager: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        store = connect(settings)
        server = DBManagerServer(
            store,
            listen_address=settings.listen_address,
            max_workers=settings.max_workers,
            writers=settings.writers,
            health_interval=settings.health_interval,
            report_key_ttl=settings.report_key_ttl,
        )
    except (StorageError, OSError) as exc:
        print(f"katib-db-manager: error: {exc}", file=sys.stderr)
        return 1
    stopping = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        _log.info("received %s, shutting down", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    print(f"katib-db-manager serving api.v1.beta1.DBManager on {server.address} ({settings.db_url})", flush=True)
    stopping.wait()
    server.stop()
    return 0


def connect(settings: Settings) -> ObservationStore:
    """Open the store, retrying while the database comes up (at once, then backing off).

    Raises:
        StorageUnavailableError: still unreachable after ``settings.connect_timeout``.
        StorageError: reachable, but the schema is missing or cannot be created.
    """
    deadline = time.monotonic() + settings.connect_timeout
    delay = 0.25
    while True:
        try:
            return open_store(settings.db_url, initialize=settings.initialize_schema)
        except StorageUnavailableError as exc:
            if time.monotonic() + delay > deadline:
                raise StorageUnavailableError(
                    f"the database at {settings.db_url} did not answer within {settings.connect_timeout:g}s: {exc}"
                ) from exc
            _log.warning("database not reachable yet (%s); retrying in %.2gs", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


if __name__ == "__main__":
    sys.exit(main())
