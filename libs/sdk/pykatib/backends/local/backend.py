"""The ``local`` backend's seam: registered, but not delivered yet (local-mode issue).

Local mode will run the DB manager in-process on SQLite and each trial as a subprocess with
``KATIB_TRIAL_NAME`` and ``KATIB_DB_MANAGER_ADDRESS`` set, on the same ``Backend`` contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from pykatib.backends._base import Backend

if TYPE_CHECKING:
    from pykatib.backends import LocalBackendConfig

MESSAGE = (
    "KatibClient(backend='local') is not available yet: local mode (running Experiments on this machine, "
    "also as `pykatib run EXPERIMENT.yaml --local`) is being built in the local-mode issue. "
    "Use backend='kubernetes' meanwhile; report_metrics() already works locally with KATIB_DB_MANAGER_ADDRESS."
)


class LocalBackend(Backend):
    """Placeholder whose construction fails with a pointer to local mode (no silent stub)."""

    def __init__(self, config: LocalBackendConfig) -> None:
        raise NotImplementedError(MESSAGE)

    def _unavailable(self, *_: object) -> NoReturn:
        raise NotImplementedError(MESSAGE)

    create_experiment = get_experiment = list_experiments = patch_experiment = _unavailable  # type: ignore[assignment]
    delete_experiment = get_suggestion = list_suggestions = get_trial = list_trials = _unavailable  # type: ignore[assignment]
