"""Typed options of a peripheral URL (``?status=off&timeout=2``): one reading of a
boolean or a bounded number for every back-end, refusing what is neither."""

from __future__ import annotations

from collections.abc import Mapping

from drivers.errors import BadPeripheralUrl


def option_float(options: Mapping[str, object], name: str, default: float,
                 low: float, high: float) -> float:
    raw = options.get(name, default)
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise BadPeripheralUrl(f"option {name}={raw!r} is not a number") from exc
    if not low <= value <= high:
        raise BadPeripheralUrl(f"option {name}={value:g} is outside {low:g}..{high:g}")
    return value


def option_bool(options: Mapping[str, object], name: str, default: bool) -> bool:
    raw = options.get(name, default)
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise BadPeripheralUrl(f"option {name}={raw!r} is not true/false")
