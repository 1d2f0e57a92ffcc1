"""Go's ``time.Duration`` text (``1s``, ``1m30s``, ``500ms``), as Katib's binaries take their flags.

Used by the pull collector (``-p``, ``-timeout``) and the webhook's flags.
"""

from __future__ import annotations

import re
from typing import Final

from katib_core.errors import ValidationError

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT: Final = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse(text: str, *, field: str = "duration") -> float:
    """Seconds in ``text``: ``0``, or a sequence of number+unit pairs with an optional sign.

    Raises:
        ValidationError: not a Go duration (a bare number other than 0 needs a unit, as in Go).
    """
    body = text.strip()
    sign = -1.0 if body.startswith("-") else 1.0
    if body[:1] in ("-", "+"):
        body = body[1:]
    if body == "0":
        return 0.0
    total, position = 0.0, 0
    for match in _PART.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise ValidationError(field, f"{text!r} is not a duration such as 1s, 500ms or 1m30s")
    return sign * total
