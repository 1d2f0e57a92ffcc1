"""``katib-experiment-controller``: parse flags, connect, wire the reconciler, run under kopf."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from katib_core import constants
from katib_core.errors import ValidationError
from katib_core.katib_config import KatibConfig
from katib_core.models import Experiment, Suggestion, Trial
from katib_experiment_controller import resources
from katib_experiment_controller.reconciler import ExperimentReconciler
from katib_operator import connecting, dbmanager_access, kubeapi, running
from katib_operator.caches import Key, ObjectCache, key_of
from katib_operator.leases import LeaderElector
from katib_operator.objects import Objects
from katib_operator.recording import EventRecorder
from katib_operator.settings import OperatorSettings, parser
from katib_operator.settings import from_args as settings_from_args
from katib_suggest import Suggester
from katib_suggest.routing import AlgorithmRouter, read_katib_config
from pykatib import dbmanager
from pykatib.metric_logs import MetricLogs

PROG = "katib-experiment-controller"
#: Trial changes reach their Experiment this much later, so a burst of them costs one status write.
TRIAL_EVENT_DELAY = 0.5
#: Trials created at once by one reconcile (a parallelTrialCount of 100 is 100 creates).
TRIAL_CREATORS = 8
#: Where a katib-config file is named when the flag is not given.
KATIB_CONFIG_ENV = "KATIB_CONFIG_FILE"


def build(
    settings: OperatorSettings,
    config: kubeapi.KubeConfig,
    *,
    on_lost: Any = None,
    katib_config: KatibConfig | None = None,
) -> running.Controller:
    """The controller with real collaborators (``main`` and the tests share this).

    ``katib_config``: where each algorithm runs (default: every one of ours in-process).
    """
    api = kubeapi.KubeApi(config, pool_size=settings.workers + TRIAL_CREATORS + 4)
    experiments: ObjectCache[Experiment] = ObjectCache(Experiment.from_api, trim=resources.without_managed_fields)
    trials: ObjectCache[Trial] = ObjectCache(
        Trial.from_api, trim=resources.trial_summary, index_label=constants.EXPERIMENT_LABEL
    )
    records: ObjectCache[Suggestion] = ObjectCache(Suggestion.from_api, trim=resources.without_managed_fields)
    recorder = EventRecorder(api, component=PROG, level=settings.events)
    creators = ThreadPoolExecutor(TRIAL_CREATORS, thread_name_prefix="trial-create")
    reconciler = ExperimentReconciler(
        objects=Objects(api),
        experiments=experiments,
        trials=trials,
        suggestions_cache=records,
        suggester=AlgorithmRouter(Suggester(), katib_config),
        recorder=recorder,
        api=api,
        creators=creators,
        metric_logs=MetricLogs(
            dbmanager_access.client(
                dbmanager.open_channel(settings.db_manager_address), dbmanager_access.push_minter(settings)
            )
        ),
    )

    def on_experiment(kind: str | None, body: Mapping[str, Any]) -> list[Key]:
        experiments.apply(kind, body)
        return [key_of(body)]

    def on_trial(kind: str | None, body: Mapping[str, Any]) -> list[Key]:
        trials.apply(kind, body)
        meta = body.get("metadata") or {}
        owner = (meta.get("labels") or {}).get(constants.EXPERIMENT_LABEL)
        return [(str(meta.get("namespace")), owner)] if owner else []

    def on_suggestion(kind: str | None, body: Mapping[str, Any]) -> list[Key]:
        records.apply(kind, body)
        return [key_of(body)]

    elector = None
    if settings.leader_elect:
        elector = LeaderElector(
            api,
            name=settings.lease_name,
            namespace=settings.lease_namespace,
            identity=settings.identity,
            on_lost=on_lost or (lambda: None),
        )

    def stop() -> None:
        recorder.stop()
        creators.shutdown(wait=True)
        reconciler.close()

    group, version = constants.GROUP, constants.VERSION
    return running.Controller(
        name=PROG,
        watches=[
            running.Watch(group, version, constants.EXPERIMENT_PLURAL, on_experiment),
            running.Watch(group, version, constants.TRIAL_PLURAL, on_trial, delay=TRIAL_EVENT_DELAY),
            running.Watch(group, version, constants.SUGGESTION_PLURAL, on_suggestion),
        ],
        reconcile=reconciler,
        workers=settings.workers,
        elector=elector,
        on_start=recorder.start,
        on_stop=stop,
        login=lambda: connecting.connection_info(config),
    )


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run until SIGINT/SIGTERM (exit 0) or until leadership is lost (exit 1)."""
    flags = parser(PROG, "Katib experiment controller: Experiments to Suggestions and Trials.")
    flags.add_argument(
        "--katib-config",
        help="katib-config file (or katib-config ConfigMap manifest): algorithms at a Suggestion service's"
        f" endpoint (env {KATIB_CONFIG_ENV}; default: every algorithm in-process)",
    )
    args = flags.parse_args(argv)
    env = os.environ if environ is None else environ
    settings = settings_from_args(PROG, args, env)
    try:
        path = args.katib_config or env.get(KATIB_CONFIG_ENV)
        katib_config = read_katib_config(Path(path), field="--katib-config") if path else None
    except ValidationError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    running.configure_logging(settings.log_level)
    stop = threading.Event()
    lost = threading.Event()

    def on_lost() -> None:
        lost.set()
        stop.set()

    controller = build(
        settings,
        kubeapi.load(settings.kubeconfig, context=settings.context),
        on_lost=on_lost,
        katib_config=katib_config,
    )
    running.run(controller, namespaces=settings.namespaces, liveness=settings.liveness, stop_flag=stop)
    return 1 if lost.is_set() else 0


if __name__ == "__main__":
    sys.exit(main())
