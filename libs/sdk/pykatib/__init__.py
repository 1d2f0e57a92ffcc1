"""pykatib: Katib's Python SDK, with push-based metrics that never lose a point.

Port from kubeflow-katib by changing one import line::

    import pykatib as katib

    katib.report_metrics({"loss": 0.1})                       # in a trial (KATIB_TRIAL_NAME set)
    katib.KatibClient().tune(name=..., objective=..., parameters={"lr": katib.search.double(0.01, 0.1)})

``report_metrics`` needs neither protobuf nor a recent grpcio (any grpcio, else pure-Python
HTTP/2), so importing it is cheap; ``KatibClient`` and the models are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from katib_core.constants import STEP_METRIC
from pykatib._reporting import buffered, flush, report_metrics, should_stop
from pykatib._version import __version__

if TYPE_CHECKING:
    from pykatib import search
    from pykatib.client import KatibClient

__all__ = ["STEP_METRIC", "KatibClient", "__version__", "buffered", "flush", "report_metrics", "search", "should_stop"]


def __getattr__(name: str) -> Any:
    # KatibClient and search come with the client extra (pydantic, kubernetes); a trial that only
    # reports never imports them, and a trial image without them still reports.
    if name not in ("KatibClient", "search"):
        raise AttributeError(f"module 'pykatib' has no attribute {name!r}")
    try:
        module = importlib.import_module("pykatib.client" if name == "KatibClient" else "pykatib.search")
    except ImportError as error:
        if error.name not in ("pykatib.client", "pykatib.search"):
            raise
        raise ImportError(
            f"pykatib.{name} needs the client extra: pip install 'pykatib[client]' (reporting works without it)",
            name=error.name,
        ) from None
    return getattr(module, name) if name == "KatibClient" else module
