"""``StrEnum`` on every Python the trial path supports (3.8+): the standard one from 3.11 on.

Katib's enums compare equal to their wire strings and print as them (``f"{reason}"`` is
``"TrialSucceeded"``); the fallback keeps exactly that behaviour on Python 3.8-3.10.
"""

from __future__ import annotations

import enum
import sys

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:

    class StrEnum(str, enum.Enum):
        """A ``str`` whose ``str()`` and ``format()`` are its value, as ``enum.StrEnum`` in 3.11."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, format_spec: str) -> str:
            return str(self.value).__format__(format_spec)


__all__ = ["StrEnum"]
