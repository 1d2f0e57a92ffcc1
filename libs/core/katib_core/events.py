"""Kubernetes Events that a decision asks its shell to post (the shell decides how and whether)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

NORMAL: Final = "Normal"
WARNING: Final = "Warning"


@dataclass(frozen=True, slots=True)
class Event:
    """One Event about the object being reconciled: ``type`` is ``Normal`` or ``Warning``."""

    type: str
    reason: str
    message: str
