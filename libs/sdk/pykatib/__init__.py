"""pykatib: Katib's Python SDK, with push-based metrics that never lose a point.

Port from kubeflow-katib by changing one import line::

    import pykatib as katib

    katib.report_metrics({"loss": 0.1})                       # in a trial (KATIB_TRIAL_NAME set)
    katib.KatibClient().tune(name=..., objective=..., parameters={"lr": katib.search.double(0.01, 0.1)})

``report_metrics`` needs neither protobuf nor a recent grpcio (any grpcio, else pure-Python
HTTP/2), so importing it is cheap; ``KatibClient`` and the models are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pykatib._metrics import STEP_METRIC
from pykatib._reporting import buffered, flush, report_metrics, should_stop
from pykatib._version import __version__

if TYPE_CHECKING:
    from pykatib import search
    from pykatib.client import KatibClient

__all__ = ["STEP_METRIC", "KatibClient", "__version__", "buffered", "flush", "report_metrics", "search", "should_stop"]


def __getattr__(name: str) -> Any:
    # KatibClient and search pull in the models (pydantic); code that only reports never pays for them.
    if name == "KatibClient":
        from pykatib.client import KatibClient

        return KatibClient
    if name == "search":
        import pykatib.search

        return pykatib.search
    raise AttributeError(f"module 'pykatib' has no attribute {name!r}")
