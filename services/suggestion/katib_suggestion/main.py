"""``katib-suggestion``: parse settings, serve Suggestion and EarlyStopping until SIGTERM/SIGINT.

The first line on stdout says where it serves (``… on HOST:PORT``), so supervisors and tests can
start it on port 0 and read the port it got.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from katib_core.errors import ValidationError
from katib_operator import kubeapi
from katib_operator.kubeapi import KubeApi
from katib_suggest import Suggester
from katib_suggestion.server import SuggestionServer
from katib_suggestion.settings import Settings
from katib_suggestion.trial_status import TrialStatusWriter

_log = logging.getLogger("katib_suggestion")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the service; return the process exit status."""
    try:
        settings = Settings.from_args(sys.argv[1:] if argv is None else argv, os.environ)
    except ValidationError as exc:
        print(f"katib-suggestion: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        trial_status = _trial_status(settings)
    except ValidationError as exc:
        print(f"katib-suggestion: error: {exc}", file=sys.stderr)
        return 2
    stopping = _stop_on_signals()
    server = SuggestionServer(
        listen_address=settings.listen_address,
        suggester=Suggester(max_studies=settings.max_studies),
        workers=settings.workers,
        db_timeout=settings.db_timeout,
        trial_status=trial_status,
    )
    try:
        server.start()
    except OSError as exc:
        print(f"katib-suggestion: error: {exc}", file=sys.stderr)
        return 1
    print(f"katib-suggestion serving api.v1.beta1.Suggestion and EarlyStopping on {server.address}", flush=True)
    stopping.wait()
    server.stop()
    return 0


def _trial_status(settings: Settings) -> TrialStatusWriter | None:
    """SetTrialStatus's Kubernetes access: the kubeconfig, else the Pod's service account (whose
    namespace is the Trials', as for Katib's per-Experiment service), else none.

    Raises:
        ValidationError: the kubeconfig given cannot be read.
    """
    if settings.kubeconfig:
        try:
            config = kubeapi.load(settings.kubeconfig)
        except (OSError, ValueError, KeyError) as exc:
            raise ValidationError("--kubeconfig", f"cannot read {settings.kubeconfig}: {exc}") from None
        return TrialStatusWriter(KubeApi(config), namespace=settings.trial_namespace)
    try:
        config = kubeapi.load(None)
    except FileNotFoundError:
        _log.info("no Kubernetes access: SetTrialStatus answers FAILED_PRECONDITION")
        return None
    own = None if settings.all_trial_namespaces else config.namespace
    return TrialStatusWriter(KubeApi(config), namespace=settings.trial_namespace or own)


def _stop_on_signals() -> threading.Event:
    stopping = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        _log.info("received %s, shutting down", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stopping


if __name__ == "__main__":
    sys.exit(main())
