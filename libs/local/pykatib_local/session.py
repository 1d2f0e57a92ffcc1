"""Everything local mode runs in one process: the work directory's store, an in-process DB
manager (real gRPC on 127.0.0.1, a free port; SQLite in the work directory unless ``db_url``),
the suggestion service, the GPU pool, and one runner thread per running Experiment.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from katib_core import push_auth as auth
from katib_core.katib_config import KatibConfig
from katib_core.push_keys import TokenMinter
from katib_dbmanager.auth import Authenticator
from katib_dbmanager.server import DBManagerServer
from katib_dbmanager.storage import open_store
from katib_pushauth.secret_file import SecretFile
from katib_suggest import routing
from katib_suggest.algorithms import Suggester
from katib_suggest.routing import AlgorithmRouter
from pykatib._dbmanager import DBManagerClient
from pykatib._transport import open_channel
from pykatib_local import gpus
from pykatib_local.runner import ExperimentRunner, Progress
from pykatib_local.store import LocalStore

_log = logging.getLogger(__name__)
WORKDIR_ENV = "PYKATIB_WORKDIR"
#: A katib-config file saying which algorithms run at a Suggestion service (docs/suggestion.md#katib-config).
KATIB_CONFIG_ENV = "PYKATIB_KATIB_CONFIG"
#: Read from the work directory when the variable is not set.
KATIB_CONFIG_FILE = "katib-config.yaml"
#: With push auth, the secret tokens are signed with (created once per work directory, mode 0600).
SECRET_FILE = ".push-auth-secret"
_TRIAL_TOKEN_TTL = 7 * 24 * 3600.0
DEFAULT_WORKDIR = ".pykatib"


def default_workdir() -> Path:
    """``$PYKATIB_WORKDIR``, else ``./.pykatib`` (rerunning in the same directory resumes)."""
    return Path(os.environ.get(WORKDIR_ENV) or DEFAULT_WORKDIR)


def read_katib_config(path: Path | None, workdir: Path) -> KatibConfig:
    """The katib-config of a local session: ``path``, else ``$PYKATIB_KATIB_CONFIG``, else
    ``<workdir>/katib-config.yaml`` when it exists, else none (every algorithm in-process).

    Raises:
        katib_core.errors.ValidationError: the file cannot be read, or an entry is wrong (named).
    """
    chosen = path or (Path(os.environ[KATIB_CONFIG_ENV]) if os.environ.get(KATIB_CONFIG_ENV) else None)
    if chosen is None:
        chosen = workdir / KATIB_CONFIG_FILE
        if not chosen.exists():
            return KatibConfig()
    return routing.read_katib_config(chosen)


class LocalSession:
    """Local mode's services for one work directory; ``close`` stops them (trials stay resumable)."""

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        db_url: str | None = None,
        push_auth: bool = False,
        katib_config_file: Path | None = None,
    ) -> None:
        self.workdir = (workdir or default_workdir()).absolute()
        #: Where each algorithm runs (in-process unless the katib-config gives a service's endpoint).
        self.suggester = AlgorithmRouter(Suggester(), read_katib_config(katib_config_file, self.workdir))
        self.store = LocalStore(self.workdir)
        self.bin_dir = self.workdir / ".bin"
        _python_shims(self.bin_dir)
        url = db_url or f"sqlite:///{self.workdir / 'katib.db'}"
        self._minter: TokenMinter | None = None
        authenticator = None
        if push_auth:
            secret_file = self.workdir / SECRET_FILE
            _ensure_secret(secret_file)
            self._minter = TokenMinter(SecretFile(secret_file), clock=time.time)
            authenticator = Authenticator(secret_file)
        self.server = DBManagerServer(
            open_store(url), listen_address="127.0.0.1:0", authenticator=authenticator
        ).start()
        minter = self._minter
        self.db = DBManagerClient(
            open_channel(self.server.address), token=(lambda: None) if minter is None else minter.admin_token
        )
        self.gpus = gpus.GpuPool(gpus.detect())
        self._threads: dict[tuple[str, str], tuple[threading.Thread, threading.Event]] = {}
        self._lock = threading.Lock()
        #: The last pass of each running Experiment, for waits that show progress without reading the store.
        self._latest: dict[tuple[str, str], Progress] = {}
        self._closed = False

    def trial_token(self, namespace: str, trial: str) -> str | None:
        """A push token for one trial (None without push auth): it may report and read that trial only."""
        if self._minter is None:
            return None
        return self._minter.trial_token(namespace, trial, ttl=_TRIAL_TOKEN_TTL)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def db_address(self) -> str:
        return self.server.address

    def runner(self) -> ExperimentRunner:
        return ExperimentRunner(
            self.store,
            db=self.db,
            db_address=self.server.address,
            suggester=self.suggester,
            gpu_pool=self.gpus,
            bin_dir=self.bin_dir,
            token_for=self.trial_token,
        )

    def run(
        self, namespace: str, name: str, *, stop: threading.Event, on_progress: Callable[[Progress], None] | None = None
    ) -> None:
        """Run an Experiment in this thread until it finishes or ``stop`` is set."""
        self.runner().run(namespace, name, stop=stop, on_progress=on_progress)

    def start(self, namespace: str, name: str) -> None:
        """Run an Experiment in a background thread (no-op if it is running already)."""
        key = (namespace, name)
        with self._lock:
            running = self._threads.get(key)
            if running is not None and running[0].is_alive():
                return
            stop = threading.Event()
            thread = threading.Thread(
                target=self._run_logged, args=(namespace, name, stop), name=f"experiment-{namespace}-{name}"
            )
            self._threads[key] = (thread, stop)
            thread.start()

    def stop(self, namespace: str, name: str, *, wait: bool = True) -> None:
        with self._lock:
            running = self._threads.pop((namespace, name), None)
        if running is not None:
            running[1].set()
            if wait:
                running[0].join()

    def is_running(self, namespace: str, name: str) -> bool:
        running = self._threads.get((namespace, name))
        return running is not None and running[0].is_alive()

    def close(self) -> None:
        """Stop every runner (their trial processes are terminated) and the DB manager."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            running = list(self._threads.values())
            self._threads.clear()
        for _, stop in running:
            stop.set()
        for thread, _ in running:
            thread.join()
        self.db.channel.close()
        self.server.stop()
        self.suggester.close()

    def __enter__(self) -> LocalSession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def latest(self, namespace: str, name: str) -> Progress | None:
        """The Experiment and its Trials after the last pass of its runner in this session (None: none yet)."""
        return self._latest.get((namespace, name))

    def _run_logged(self, namespace: str, name: str, stop: threading.Event) -> None:
        def publish(progress: Progress) -> None:
            self._latest[(namespace, name)] = progress

        try:
            self.run(namespace, name, stop=stop, on_progress=publish)
        except Exception:
            _log.exception("local experiment %s/%s stopped with an error", namespace, name)


def _python_shims(bin_dir: Path) -> None:
    """``python``/``python3`` in the trials' PATH are this interpreter (trial scripts say ``python``)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        link = bin_dir / name
        if link.is_symlink() and os.readlink(link) == sys.executable:
            continue
        link.unlink(missing_ok=True)
        link.symlink_to(sys.executable)


def _ensure_secret(path: Path) -> None:
    """The work directory's push secret, created (owner-only) on first use."""
    if not path.exists():
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another session made it first
        else:
            with os.fdopen(descriptor, "w") as out:
                out.write(auth.new_secret() + "\n")
