"""``katib-trial-controller``: parse flags, connect to the API server and the DB manager, run under kopf."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from katib_core import constants, durations, pod_injection
from katib_core.errors import ValidationError
from katib_core.models import Trial
from katib_operator import connecting, dbmanager_access, kubeapi, running
from katib_operator.caches import Key, ObjectCache, key_of
from katib_operator.leases import LeaderElector
from katib_operator.objects import Objects
from katib_operator.recording import EventRecorder
from katib_operator.settings import OperatorSettings, parser
from katib_operator.settings import from_args as settings_from_args
from katib_trial_controller import push_tokens, resources
from katib_trial_controller.reconciler import TrialReconciler
from pykatib import dbmanager
from pykatib.metric_logs import MetricLogs

PROG = "katib-trial-controller"


def build(
    settings: OperatorSettings,
    config: kubeapi.KubeConfig,
    *,
    trial_resources: Sequence[str] = resources.DEFAULT_TRIAL_RESOURCES,
    push_token_ttl: float = push_tokens.DEFAULT_TOKEN_TTL,
    on_lost: Any = None,
) -> running.Controller:
    """The controller with real collaborators (``main`` and the tests share this)."""
    api = kubeapi.KubeApi(config, pool_size=settings.workers + 4)
    kinds = [resources.parse_trial_resource(text) for text in trial_resources]
    by_type = {(k.resource.api_version, k.kind): k for k in kinds}
    trials: ObjectCache[Trial] = ObjectCache(Trial.from_api, trim=resources.without_managed_fields)
    jobs: ObjectCache[dict[str, Any]] = ObjectCache(lambda body: body, trim=resources.job_summary)
    recorder = EventRecorder(api, component=PROG, level=settings.events)
    channel = dbmanager.open_channel(settings.db_manager_address)
    minter = dbmanager_access.push_minter(settings)
    objects = Objects(api)
    reconciler = TrialReconciler(
        objects=objects,
        trials=trials,
        jobs=jobs,
        job_kinds=by_type,
        metric_logs=MetricLogs(dbmanager_access.client(channel, minter)),
        recorder=recorder,
        push_tokens=None if minter is None else push_tokens.PushTokens(objects, minter, ttl=push_token_ttl),
    )

    def on_trial(kind: str | None, body: Mapping[str, Any]) -> list[Key]:
        trials.apply(kind, body)
        return [key_of(body)]

    def on_job(kind: str | None, body: Mapping[str, Any]) -> list[Key]:
        owner = pod_injection.trial_owner(body)  # the webhook's rule: one for both
        if owner is None:
            return []
        jobs.apply(kind, body)
        return [(str((body.get("metadata") or {}).get("namespace")), owner)]

    elector = None
    if settings.leader_elect:
        elector = LeaderElector(
            api,
            name=settings.lease_name,
            namespace=settings.lease_namespace,
            identity=settings.identity,
            on_lost=on_lost or (lambda: None),
        )
    watches = [running.Watch(constants.GROUP, constants.VERSION, constants.TRIAL_PLURAL, on_trial)]
    watches += [running.Watch(k.resource.group, k.resource.version, k.resource.plural, on_job) for k in kinds]

    def stop() -> None:
        recorder.stop()
        channel.close()

    return running.Controller(
        name=PROG,
        watches=watches,
        reconcile=reconciler,
        workers=settings.workers,
        elector=elector,
        on_start=recorder.start,
        on_stop=stop,
        login=lambda: connecting.connection_info(config),
    )


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run until SIGINT/SIGTERM (exit 0) or until leadership is lost (exit 1)."""
    p = parser(PROG, "Katib trial controller: Trials to jobs, metric logs to Trial status.")
    p.add_argument(
        "--trial-resource",
        action="append",
        default=[],
        help="job kind trials may run, as Kind.version.group (repeatable; default Job.v1.batch)",
    )
    p.add_argument(
        "--push-token-ttl",
        default="720h",
        help="with --push-auth-secret-file: how long a trial's push token is valid (Go duration, default 720h)",
    )
    args = p.parse_args(argv)
    settings = settings_from_args(PROG, args, os.environ if environ is None else environ)
    try:
        ttl = durations.parse(args.push_token_ttl, field="--push-token-ttl")
    except ValidationError as exc:
        p.error(str(exc))
    if ttl <= 0:
        p.error("--push-token-ttl must be positive")
    running.configure_logging(settings.log_level)
    stop = threading.Event()
    lost = threading.Event()

    def on_lost() -> None:
        lost.set()
        stop.set()

    controller = build(
        settings,
        kubeapi.load(settings.kubeconfig, context=settings.context),
        trial_resources=args.trial_resource or resources.DEFAULT_TRIAL_RESOURCES,
        push_token_ttl=ttl,
        on_lost=on_lost,
    )
    running.run(controller, namespaces=settings.namespaces, liveness=settings.liveness, stop_flag=stop)
    return 1 if lost.is_set() else 0


if __name__ == "__main__":
    sys.exit(main())
