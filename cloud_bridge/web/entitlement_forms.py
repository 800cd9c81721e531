"""Form fields of an entitlement (dates in local time, windows as text) to and from the
JSON API's models, so a page change is validated exactly like an API change."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from cloud_bridge.errors import Invalid
from cloud_bridge.web.context import LOCAL_TZ

DAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class FieldError(Invalid):
    pass


def day_start_s(day: date) -> int:
    """Local midnight as epoch seconds (the unit of entitlement times, docs/protocol.md)."""
    return int(datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ).timestamp())


def parse_day(text: str, what: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FieldError(f"{what}: not a date (YYYY-MM-DD)") from None


def _days(text: str) -> list[int]:
    out: set[int] = set()
    for part in text.lower().split(","):
        part = part.strip()
        if "-" in part:
            a, b = (DAY_NAMES.index(x.strip()[:3]) if x.strip()[:3] in DAY_NAMES else -1
                    for x in part.split("-", 1))
            if a < 0 or b < 0:
                raise FieldError(f"windows: unknown day range {part!r}")
            out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        elif part[:3] in DAY_NAMES:
            out.add(DAY_NAMES.index(part[:3]))
        else:
            raise FieldError(f"windows: unknown day {part!r} (use mon..sun)")
    return sorted(out)


def parse_windows(text: str) -> list[dict[str, Any]]:
    """``mon-fri 06:00-14:00; sat,sun 08:00-12:00`` (end before start crosses midnight)."""
    windows = []
    for chunk in text.split(";"):
        chunk = chunk.strip()
        if not chunk:
            continue
        days, _, hours = chunk.rpartition(" ")
        start, _, end = hours.partition("-")
        if not days or not end:
            raise FieldError(f"windows: {chunk!r} is not like 'mon-fri 06:00-14:00'")
        windows.append({"days": _days(days), "start": start.strip(), "end": end.strip()})
    return windows


def format_windows(windows: list[dict[str, Any]] | None) -> str:
    return "; ".join(f"{','.join(DAY_NAMES[d] for d in w['days'])} {w['start']}-{w['end']}"
                     for w in windows or [])


def parse_zones(text: str) -> list[str] | None:
    zones = [z.strip() for z in text.split(",") if z.strip()]
    return zones or None


def entitlement_fields(form: dict[str, str]) -> dict[str, Any]:
    """The entitlement fields of a form, as EntitlementIn / EntitlementPatch input."""
    valid_from = parse_day(form.get("valid_from", ""), "valid from")
    valid_until = parse_day(form.get("valid_until", ""), "valid until")
    frozen_from = parse_day(form.get("frozen_from", ""), "frozen from")
    frozen_until = parse_day(form.get("frozen_until", ""), "frozen until")
    entries = form.get("entries_total", "").strip()
    if entries and not entries.isdigit():
        raise FieldError("entries: a whole number")
    return {
        "kind": form.get("kind", ""),
        "valid_from": day_start_s(valid_from) if valid_from else None,
        # the form says "until" inclusive; the model's valid_to is exclusive
        "valid_to": day_start_s(valid_until + timedelta(days=1)) if valid_until else None,
        "valid_on": parse_day(form.get("valid_on", ""), "valid on"),
        "entries_total": int(entries) if entries else None,
        "zones": parse_zones(form.get("zones", "")),
        "windows": parse_windows(form.get("windows", "")),
        "frozen_from": day_start_s(frozen_from) if frozen_from else None,
        "frozen_to": day_start_s(frozen_until + timedelta(days=1)) if frozen_until else None,
    }
