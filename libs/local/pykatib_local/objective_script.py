"""The objective's Python source inside a ``tune()`` trial's command, as bash would have written it.

``tune()`` (``pykatib._tuning``) makes each trial ``bash -c <script>``: the script writes the
objective's source and its call line, through an unquoted here-document, to a temporary file and
runs ``python -u`` on it. Local mode's fast path (``pykatib_local.zygote``) runs that source in a
pre-imported worker instead, so it must get exactly the text bash would have written. This module
recognizes the script and reproduces bash's rules for it, or says why it cannot:

- anything else in the script (``packages_to_install``'s pip step, ``torchrun``, a changed template);
- ``$`` or a backquote in the source: bash expands parameters and commands in an unquoted
  here-document, which only bash can reproduce;
- a line ``EOM`` in the source: bash would end the here-document there.

Otherwise bash's rules are two: a backslash before a backslash or a newline is removed (here-document
quoting), and ``read`` strips leading and trailing blanks and newlines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

DELIMITER = "EOM"
SCRIPT_NAME = "ephemeral_script.py"

_SCRIPT = re.compile(
    r"\nprogram_path=\$\(mktemp -d\)\n"
    r"read -r -d '' SCRIPT << EOM\n\n(?P<body>.*)\nEOM\n"
    r'printf "%s" "\$SCRIPT" > "\$program_path/ephemeral_script\.py"\n'
    r'python -u "\$program_path/ephemeral_script\.py"',
    re.DOTALL,
)
_READ_BLANKS = " \t\n"


@dataclass(frozen=True)
class Objective:
    """The Python source a ``tune()`` trial runs (``source``), or why it is not one (``reason``)."""

    source: str | None
    reason: str = ""


def from_argv(argv: Sequence[str]) -> Objective:
    """The objective in a trial's ``argv`` (``bash -c <tune() script>``), or the reason it has none."""
    if len(argv) != 3 or argv[0] != "bash" or argv[1] != "-c":
        return Objective(None, "the trial's command is not tune()'s bash -c script")
    return from_script(argv[2])


def from_script(script: str) -> Objective:
    """The Python file tune()'s ``script`` writes (see the module docstring), or the reason it cannot be known."""
    match = _SCRIPT.fullmatch(script)
    if match is None:
        return Objective(None, "the script is not tune()'s plain `python -u` one (pip install, torchrun or edited)")
    body = match.group("body")
    if "$" in body or "`" in body:
        return Objective(None, "the objective's source has $ or a backquote, which bash expands in the trial script")
    if DELIMITER in body.split("\n"):
        return Objective(None, f"the objective's source has a line {DELIMITER!r}, which ends bash's here-document")
    return Objective(_unquote(body).strip(_READ_BLANKS))


def _unquote(body: str) -> str:
    r"""Bash's here-document quoting without ``$`` or backquotes: ``\\`` is ``\``, ``\<newline>`` is nothing."""
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body) and body[index + 1] in "\\\n":
            if body[index + 1] == "\\":
                out.append("\\")
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


__all__ = ["SCRIPT_NAME", "Objective", "from_argv", "from_script"]
