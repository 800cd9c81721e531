"""The one strict JSON loader for every inbound edge (bridge and agent side alike).

Python's ``json`` accepts things that are not JSON or that a database cannot hold:
``NaN``, ``Infinity`` and ``-Infinity`` (and numbers such as ``1e400`` that overflow to
infinity), lone UTF-16 surrogates written as ``\\ud800`` escapes, and NUL characters
(``\\u0000``, which PostgreSQL's jsonb refuses). One such value stored by the bridge breaks
every later query that looks inside the JSON, so they are refused at the edge.

Hand-written on top of the standard library rather than a third-party parser: the hooks
``json`` already offers (``parse_constant``, ``parse_float``) cover the numbers, and the
string checks run only when the text contains a ``\\u0000`` or a ``\\ud800``-``\\udfff``
escape, the only way either character can reach a string in valid UTF-8 JSON.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# an escape that may stand for NUL or a surrogate; a false alarm (an escaped backslash
# before "u0000") only costs the exact check of poison_in
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


class StrictJsonError(ValueError):
    """The input is refused; the text is short and safe to log (no input echo).

    ``syntax`` is True when the input is not JSON at all, False when it is JSON that
    holds a value we refuse (non-finite number, lone surrogate, NUL)."""

    def __init__(self, reason: str, *, syntax: bool) -> None:
        super().__init__(reason)
        self.syntax = syntax


def _refuse_constant(name: str) -> Any:
    raise StrictJsonError(f"{name} is not allowed in JSON", syntax=False)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictJsonError(f"number {text[:24]} is out of range", syntax=False)
    return value


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def loads(raw: bytes | str) -> Any:
    """Parse ``raw`` (UTF-8 bytes or text) strictly; raises :class:`StrictJsonError`."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
    except UnicodeDecodeError:
        raise StrictJsonError("not UTF-8 text", syntax=True) from None
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise StrictJsonError(f"not JSON: {exc.msg} at {exc.pos}", syntax=True) from None
    except RecursionError:
        raise StrictJsonError("JSON nested too deeply", syntax=True) from None
    except ValueError as exc:  # int too long (sys.set_int_max_str_digits) and the like
        if isinstance(exc, StrictJsonError):
            raise
        raise StrictJsonError("number too long", syntax=False) from None
    if "\\u" in text and _SUSPECT_ESCAPE.search(text):
        reason = poison_in(value)
        if reason is not None:
            raise StrictJsonError(reason, syntax=False)
    return value


def poison_in(value: Any, where: str = "") -> str | None:
    """Where ``value`` (already parsed, perhaps leniently) holds something we refuse:
    a non-finite float, a lone surrogate or a NUL in a string or key; None when clean."""
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):  # children pushed in reverse: reported in document order
            for key, sub in reversed(item.items()):
                bad = _bad_string(key)
                if bad:
                    return f"{path or 'payload'}: key {bad}"
                stack.append((f"{path}.{key}" if path else str(key), sub))
        elif isinstance(item, list):
            stack.extend((f"{path}.{i}" if path else str(i), item[i])
                         for i in range(len(item) - 1, -1, -1))
        elif isinstance(item, str):
            bad = _bad_string(item)
            if bad:
                return f"{path or 'payload'}: {bad}"
        elif isinstance(item, float) and not math.isfinite(item):
            name = "NaN" if math.isnan(item) else ("Infinity" if item > 0 else "-Infinity")
            return f"{path or 'payload'}: {name} is not allowed in JSON"
    return None


def _bad_string(text: str) -> str | None:
    if "\x00" in text:
        return "NUL character is not allowed"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "lone surrogate is not allowed"
    return None
