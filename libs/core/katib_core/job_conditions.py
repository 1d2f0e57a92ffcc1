"""Katib's trial success/failure conditions: the gjson subset they are written in, over a job's JSON.

Katib evaluates ``trialTemplate.successCondition``/``failureCondition`` with gjson on the job
object; a condition holds when the result is an object or a non-empty array, and that object
(or the array's first element) supplies the job's ``reason`` and ``message``.

Supported gjson syntax: dotted keys (``\\`` escapes ``.``, ``|``, ``#``), array indexes, ``#``
(length, or mapping the rest of the path over the elements), queries ``#(path op value)`` (first
match) and ``#(path op value)#`` (all matches) with ``== != < <= > >= % !%`` (``%`` is gjson's
``*``/``?`` pattern) or a bare ``#(path)`` existence test, and ``|`` pipes. Anything else
(modifiers ``@…``, wildcards in keys, nested queries, multipaths) raises ``ValidationError``
naming the expression, never a silent mismatch.
"""

from __future__ import annotations

import fnmatch
import json
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from katib_core.errors import ValidationError
from katib_core.trial_conditions import JobPhase

_MISSING: Final = object()
_OPS: Final = ("==", "!=", "<=", ">=", "!%", "<", ">", "%")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


@dataclass(frozen=True, slots=True)
class JobState:
    """The job's phase by the trial's conditions, with the matched condition's reason and message."""

    phase: JobPhase
    reason: str = ""
    message: str = ""


def evaluate(document: Any, expression: str) -> Any:
    """The gjson result of ``expression`` on ``document`` (a parsed JSON value); ``None`` if it does not exist.

    Raises:
        ValidationError: the expression uses syntax outside the supported subset.
    """
    result = _run(document, _parse(expression), expression)
    return None if result is _MISSING else result


def holds(document: Any, expression: str) -> bool:
    """Whether the condition matches: its result is an object or a non-empty array."""
    return _matched(evaluate(document, expression)) is not None


def job_state(job: Mapping[str, Any], *, success_condition: str, failure_condition: str) -> JobState:
    """The job's phase: failure is checked first, then success, else it is running (Katib's order)."""
    for phase, expression in ((JobPhase.FAILED, failure_condition), (JobPhase.SUCCEEDED, success_condition)):
        if not expression:
            continue
        matched = _matched(evaluate(job, expression))
        if matched is not None:
            reason = matched.get("reason") if isinstance(matched, Mapping) else None
            message = matched.get("message") if isinstance(matched, Mapping) else None
            return JobState(phase, str(reason or ""), str(message or ""))
    return JobState(JobPhase.RUNNING)


def _matched(result: Any) -> Any:
    if isinstance(result, Mapping):
        return result
    if isinstance(result, list) and result:
        return result[0]
    return None


# -- parsing --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Key:
    name: str


@dataclass(frozen=True, slots=True)
class _Count:
    """``#``: the array's length, or (followed by more path) the rest mapped over its elements."""


@dataclass(frozen=True, slots=True)
class _Query:
    path: tuple[Any, ...]  # parsed left-hand path (empty: the element itself)
    op: str | None
    value: Any
    all: bool


@dataclass(frozen=True, slots=True)
class _Pipe:
    """``|``: the rest of the path applies to the result as a whole."""


def _parse(expression: str) -> tuple[Any, ...]:
    if not expression:
        raise ValidationError("condition", "the expression is empty")
    tokens: list[Any] = []
    i, n = 0, len(expression)
    while i < n:
        char = expression[i]
        if char == "@" and (i == 0 or expression[i - 1] in ".|"):
            raise ValidationError("condition", f"{expression!r}: gjson modifiers (@...) are not supported")
        if char in "[{" and (i == 0 or expression[i - 1] in ".|"):
            raise ValidationError("condition", f"{expression!r}: gjson multipaths are not supported")
        if char == "#" and expression.startswith("#(", i):
            end = _closing_paren(expression, i + 1)
            body = expression[i + 2 : end]
            every = end + 1 < n and expression[end + 1] == "#"
            tokens.append(_parse_query(body, every, expression))
            i = end + (2 if every else 1)
        elif char == "#" and (i + 1 == n or expression[i + 1] in ".|"):
            tokens.append(_Count())
            i += 1
        else:
            name, i = _read_key(expression, i)
            tokens.append(_Key(name))
        if i < n:
            sep = expression[i]
            if sep == "|":
                tokens.append(_Pipe())
            elif sep != ".":
                raise ValidationError("condition", f"{expression!r}: unexpected {sep!r} at {i}")
            i += 1
            if i == n:
                raise ValidationError("condition", f"{expression!r}: ends with {sep!r}")
    return tuple(tokens)


def _read_key(expression: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    i = start
    while i < len(expression) and expression[i] not in ".|":
        char = expression[i]
        if char == "\\" and i + 1 < len(expression):
            out.append(expression[i + 1])
            i += 2
            continue
        if char in "*?":
            raise ValidationError("condition", f"{expression!r}: wildcards in keys are not supported")
        if char in "()#":
            raise ValidationError("condition", f"{expression!r}: unexpected {char!r} at {i}")
        out.append(char)
        i += 1
    if not out:
        raise ValidationError("condition", f"{expression!r}: empty path component at {start}")
    return "".join(out), i


def _closing_paren(expression: str, open_at: int) -> int:
    depth, i, quoted = 0, open_at, False
    while i < len(expression):
        char = expression[i]
        if quoted:
            if char == "\\":
                i += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValidationError("condition", f"{expression!r}: unbalanced '(' at {open_at}")


def _parse_query(body: str, every: bool, expression: str) -> _Query:
    if "#(" in body:
        raise ValidationError("condition", f"{expression!r}: nested queries are not supported")
    quoted, at = False, -1
    for index, char in enumerate(body):
        if char == '"':
            quoted = not quoted
        if not quoted and any(body.startswith(op, index) for op in _OPS):
            at = index
            break
    if at < 0:
        path = body.strip()
        if any(char in path for char in "=<>!~%"):
            raise ValidationError("condition", f"{expression!r}: unsupported query operator in ({body})")
        return _Query(_parse(path) if path else (), None, None, every)
    op = next(o for o in _OPS if body.startswith(o, at))
    left, right = body[:at].strip(), body[at + len(op) :].strip()
    return _Query(_parse(left) if left else (), op, _literal(right, expression), every)


def _literal(text: str, expression: str) -> Any:
    if text.startswith('"'):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValidationError("condition", f"{expression!r}: bad string {text}") from None
        return str(value)
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if _NUMBER.fullmatch(text):
        return float(text)
    raise ValidationError("condition", f"{expression!r}: unsupported query value {text!r}")


# -- evaluation -----------------------------------------------------------------------------------


def _run(value: Any, tokens: tuple[Any, ...], expression: str) -> Any:
    for index, token in enumerate(tokens):
        if value is _MISSING:
            return _MISSING
        rest = tokens[index + 1 :]
        if isinstance(token, _Pipe):
            continue
        if isinstance(token, _Key):
            value = _member(value, token.name)
        elif isinstance(token, _Count):
            if not isinstance(value, list):
                return _MISSING
            if rest and not isinstance(rest[0], _Pipe):
                mapped = [_run(item, rest, expression) for item in value]
                return [item for item in mapped if item is not _MISSING]
            value = len(value)
        elif isinstance(token, _Query):
            if not isinstance(value, list):
                return _MISSING
            matches = [item for item in value if _test(item, token, expression)]
            if token.all:
                if rest and not isinstance(rest[0], _Pipe):
                    mapped = [_run(item, rest, expression) for item in matches]
                    return [item for item in mapped if item is not _MISSING]
                value = matches
            else:
                value = matches[0] if matches else _MISSING
    return value


def _member(value: Any, name: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(name, _MISSING)
    if isinstance(value, list) and name.isdigit():
        position = int(name)
        return value[position] if position < len(value) else _MISSING
    return _MISSING


_COMPARE: Final[dict[str, Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _test(item: Any, query: _Query, expression: str) -> bool:  # noqa: PLR0911 - gjson comparison rules
    left = _run(item, query.path, expression) if query.path else item
    if left is _MISSING:
        return False
    if query.op is None:
        return left not in (None, False)
    right = query.value
    if query.op in ("%", "!%"):
        if not isinstance(left, str) or not isinstance(right, str):
            return False
        return fnmatch.fnmatchcase(left, right) == (query.op == "%")
    if right is None:
        return (left is None) == (query.op == "==")
    if not _same_type(left, right):
        return query.op == "!="  # gjson: values of different types never compare equal
    if isinstance(left, bool) and query.op not in ("==", "!="):
        return False
    return bool(_COMPARE[query.op](float(left) if isinstance(right, float) else left, right))


def _same_type(left: Any, right: Any) -> bool:
    if isinstance(right, bool) or isinstance(left, bool):
        return isinstance(right, bool) and isinstance(left, bool)
    if isinstance(right, float):
        return isinstance(left, int | float)
    return isinstance(left, str) and isinstance(right, str)
