"""The shell every controller runs in: kopf watches feed caches and a work queue; worker threads reconcile.

kopf handlers only store the event's object and queue the keys it concerns (level-triggered: a
reconcile reads everything it needs from the caches, so coalesced or missed events lose
nothing; kopf's initial listing queues every object at start-up). Workers call the reconciler,
which returns when to look again; its exceptions map to retries the way kopf's
``TemporaryError``/``PermanentError`` would: API or DB-manager outages and write conflicts are
retried with per-key exponential backoff, anything else is logged and retried at the slowest
backoff. Leadership (a Lease) is taken in kopf's start-up handler, before any watch starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import kopf

from katib_core.errors import KatibError, StorageError, ValidationError
from katib_operator.caches import Key
from katib_operator.leases import LeaderElector
from katib_operator.objects import ApiUnavailableError, ConflictError
from katib_operator.workqueue import ShutDownError, WorkQueue

log = logging.getLogger(__name__)

#: Retried with backoff: the outside world is down or changed under us.
TEMPORARY: tuple[type[Exception], ...] = (
    ApiUnavailableError,
    ConflictError,
    StorageError,
    ConnectionError,
    TimeoutError,
)
#: Not retried until the object changes: the spec is wrong (the webhook should have said so).
PERMANENT: tuple[type[Exception], ...] = (ValidationError,)


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    """What a reconcile asks for: look again after ``requeue_after`` seconds (None: only on events)."""

    requeue_after: float | None = None


@dataclasses.dataclass(frozen=True)
class Watch:
    """A watched resource: ``on_event(type, object)`` stores it and returns the keys to reconcile.

    ``delay`` > 0 queues those keys that much later: events of many children (say Trials) then
    coalesce into one reconcile (and one status write) of their parent.
    """

    group: str
    version: str
    plural: str
    on_event: Callable[[str | None, Mapping[str, Any]], Iterable[Key]]
    delay: float = 0.0


class Controller:
    """Workers around one reconciler, and the kopf registry that feeds them.

    Args:
        name: the component name (logs, Events).
        watches: the resources to watch.
        reconcile: ``key → Result``; raises on failure (see the module docstring).
        workers: reconciles in parallel (never two on one key).
        elector: leader election; None to reconcile without it (tests, single replica).
        on_start / on_stop: extra start-up and shutdown steps (e.g. the Event recorder).
        permanent_error: called with ``(key, exception)`` for permanent errors (e.g. post an Event).
    """

    def __init__(
        self,
        *,
        name: str,
        watches: Iterable[Watch],
        reconcile: Callable[[Key], Result],
        workers: int = 4,
        elector: LeaderElector | None = None,
        on_start: Callable[[], None] = lambda: None,
        on_stop: Callable[[], None] = lambda: None,
        permanent_error: Callable[[Key, Exception], None] = lambda key, exc: None,
        login: Callable[[], kopf.ConnectionInfo] | None = None,
    ) -> None:
        self.name = name
        self.queue: WorkQueue[Key] = WorkQueue()
        self._watches = list(watches)
        self._reconcile = reconcile
        self._workers = workers
        self._elector = elector
        self._on_start = on_start
        self._on_stop = on_stop
        self._permanent = permanent_error
        self._login = login
        self._threads: list[threading.Thread] = []
        self.stopped = threading.Event()
        self.reconciles = 0

    # -- kopf ---------------------------------------------------------------------------------

    def registry(self, registry: kopf.OperatorRegistry | None = None) -> kopf.OperatorRegistry:
        """This controller's handlers in ``registry`` (default a fresh one; never kopf's global one).

        Several controllers can share one registry, i.e. run in one process under one kopf.
        """
        registry = registry if registry is not None else kopf.OperatorRegistry()
        for watch in self._watches:
            kopf.on.event(
                watch.group, watch.version, watch.plural, registry=registry, id=f"{self.name}/{watch.plural}"
            )(self._handler(watch))
        kopf.on.startup(registry=registry, id=f"{self.name}/startup")(cast(Any, self._startup))
        kopf.on.cleanup(registry=registry, id=f"{self.name}/cleanup")(cast(Any, self._cleanup))
        if self._login is not None:
            login = self._login
            kopf.on.login(registry=registry, id=f"{self.name}/login")(lambda **_: login())
        return registry

    @staticmethod
    def settings() -> kopf.OperatorSettings:
        """kopf settings: no peering (we use a Lease), no Events from kopf's log."""
        settings = kopf.OperatorSettings()
        settings.peering.standalone = True
        settings.posting.enabled = False
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.watching.reconnect_backoff = 1.0
        return settings

    def _handler(self, watch: Watch) -> Callable[..., Any]:
        def on_event(event: Mapping[str, Any], **_: Any) -> None:
            body = event.get("object")
            if not isinstance(body, Mapping):
                return
            for key in watch.on_event(event.get("type"), body):
                self.queue.add_after(key, watch.delay)

        async def handler(event: Mapping[str, Any], **kwargs: Any) -> None:
            on_event(event, **kwargs)

        return handler

    async def _startup(self, logger: logging.Logger, **_: Any) -> None:
        elector = self._elector
        if elector is not None:
            # A daemon thread, not the default executor: a shutdown while waiting must not hang on it.
            loop = asyncio.get_running_loop()
            leading: asyncio.Future[bool] = loop.create_future()

            def settle(won: bool) -> None:
                if not leading.done():
                    leading.set_result(won)

            def wait() -> None:
                loop.call_soon_threadsafe(settle, elector.acquire(self.stopped))

            threading.Thread(target=wait, name=f"{self.name}-election", daemon=True).start()
            try:
                won = await leading
            except asyncio.CancelledError:
                self.stopped.set()
                raise
            if not won:
                raise kopf.PermanentError("stopped before leadership was acquired")
        self.start_workers()
        logger.info("%s: %d workers started", self.name, self._workers)

    async def _cleanup(self, **_: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.stop)

    # -- workers ------------------------------------------------------------------------------

    def start_workers(self) -> None:
        self._on_start()
        for index in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"{self.name}-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the workers (each finishes its current reconcile) and release leadership."""
        self.stopped.set()
        self.queue.shut_down()
        for thread in self._threads:
            thread.join(30)
        self._threads.clear()
        self._on_stop()
        if self._elector is not None:
            self._elector.release()

    def _work(self) -> None:
        while True:
            try:
                key = self.queue.get()
            except ShutDownError:
                return
            try:
                result = self._reconcile(key)
            except TEMPORARY as exc:
                delay = self.queue.retry(key)
                log.info("%s %s/%s: %s; retry in %.2fs", self.name, key[0], key[1], exc, delay)
            except PERMANENT as exc:
                self.queue.forget(key)
                log.error("%s %s/%s: %s (not retried until it changes)", self.name, key[0], key[1], exc)
                self._permanent(key, exc)
            except KatibError as exc:
                delay = self.queue.retry(key)
                log.warning("%s %s/%s: %s; retry in %.2fs", self.name, key[0], key[1], exc, delay)
            except Exception:
                delay = self.queue.retry(key)
                log.exception("%s %s/%s: reconcile failed; retry in %.2fs", self.name, key[0], key[1], delay)
            else:
                self.queue.forget(key)
                if result.requeue_after is not None:
                    self.queue.add_after(key, result.requeue_after)
            finally:
                self.reconciles += 1
                self.queue.done(key)


def run(
    controller: Controller,
    *,
    namespaces: Iterable[str] = (),
    liveness: str | None = None,
    stop_flag: threading.Event | None = None,
) -> None:
    """Run ``controller`` under kopf until SIGINT/SIGTERM or ``stop_flag`` (cluster-wide if no namespaces)."""
    chosen = tuple(namespaces)
    kopf.run(
        registry=controller.registry(),
        settings=controller.settings(),
        standalone=True,
        clusterwide=not chosen,
        namespaces=chosen,
        liveness_endpoint=liveness,
        stop_flag=stop_flag,
    )


def configure_logging(level: str) -> None:
    """Logging for a controller process (``main`` only): kopf's per-event handler lines only at DEBUG."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
