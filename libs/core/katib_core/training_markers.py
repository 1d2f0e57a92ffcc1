"""The protocol between a wrapped training command and its collector sidecar.

Katib's, in docs/katib-compat.md#pod-injection and #collectors.

The pod webhook wraps the primary container's command so that it writes ``completed`` (or
``failed``) into ``<dir>/<shell pid>.pid``; the sidecar finds the shell by the text
``echo completed > <dir>`` in its command line and, to stop the training early, writes
``early-stopped`` there first.
Kept apart from ``pod_injection`` so the sidecar imports no models.
"""

from __future__ import annotations

import posixpath
from typing import Final

COMPLETED: Final = "completed"
EARLY_STOPPED: Final = "early-stopped"
#: Written by the wrapper when the command fails (Katib writes nothing; any text but the two
#: above means failure to every collector, Katib's included).
FAILED: Final = "failed"


def completion_command(directory: str) -> str:
    """The command's completion step, as it appears in the Pod spec (``$$$$``: the kubelet makes it ``$$``)."""
    return f"echo {COMPLETED} > {directory}/$$$$.pid"


def command_line_marker(directory: str) -> str:
    """What the running wrapped shell's command line contains."""
    return f"echo {COMPLETED} > {directory}"


def marker_directory(metrics_path: str, *, is_directory: bool = False) -> str:
    """Where the markers go: the metrics file's directory (or the metrics directory itself)."""
    return posixpath.normpath(metrics_path if is_directory else posixpath.dirname(metrics_path))
