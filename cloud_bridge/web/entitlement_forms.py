"""Form fields of an entitlement (dates in local time, windows as text) to and from the
JSON API's models, so a page change is validated exactly like an API change."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from cloud_bridge.errors import Invalid
from cloud_bridge.web.context import LOCAL_TZ
from contracts.i18n import gettext as _
from contracts.i18n import parse_day as parse_local_day

DAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ENTRIES_MAX = 1000


class FieldError(Invalid):
    """A form value refused, with the message for the person and the field it is for."""

    def __init__(self, message: str, field: str = "__all__") -> None:
        super().__init__(message)
        self.field = field


def windows_hint() -> str:
    return _("Write hours like mon-fri 06:00-14:00; sat,sun 08:00-12:00.")


def day_start_s(day: date) -> int:
    """Local midnight as epoch seconds (the unit of entitlement times, docs/protocol.md)."""
    return int(datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ).timestamp())


def parse_day(text: str, field: str) -> date | None:
    """A typed date (3. 12. 2026 or ISO) or None when empty; FieldError for ``field``."""
    text = text.strip()
    if not text:
        return None
    try:
        return parse_local_day(text)
    except ValueError as exc:
        raise FieldError(str(exc), field) from None


def _days(text: str) -> list[int]:
    out: set[int] = set()
    for part in text.lower().split(","):
        part = part.strip()
        if "-" in part:
            a, b = (DAY_NAMES.index(x.strip()[:3]) if x.strip()[:3] in DAY_NAMES else -1
                    for x in part.split("-", 1))
            if a < 0 or b < 0:
                raise FieldError(windows_hint(), "windows")
            out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        elif part[:3] in DAY_NAMES:
            out.add(DAY_NAMES.index(part[:3]))
        else:
            raise FieldError(windows_hint(), "windows")
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
            raise FieldError(windows_hint(), "windows")
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
    valid_from = parse_day(form.get("valid_from", ""), "valid_from")
    valid_until = parse_day(form.get("valid_until", ""), "valid_until")
    frozen_from = parse_day(form.get("frozen_from", ""), "frozen_from")
    frozen_until = parse_day(form.get("frozen_until", ""), "frozen_until")
    entries = form.get("entries_total", "").strip()
    if entries and (not entries.isdigit() or not 1 <= int(entries) <= ENTRIES_MAX):
        raise FieldError(_("A whole number from 1 to %(n)s.") % {"n": ENTRIES_MAX},
                         "entries_total")
    if not entries and form.get("kind") in ("punch_card", "gift_voucher"):
        raise FieldError(_("A punch card or voucher needs a number of entries."),
                         "entries_total")
    return {
        "kind": form.get("kind", ""),
        "valid_from": day_start_s(valid_from) if valid_from else None,
        # the form says "until" inclusive; the model's valid_to is exclusive
        "valid_to": day_start_s(valid_until + timedelta(days=1)) if valid_until else None,
        "valid_on": parse_day(form.get("valid_on", ""), "valid_on"),
        "entries_total": int(entries) if entries else None,
        "zones": parse_zones(form.get("zones", "")),
        "windows": parse_windows(form.get("windows", "")),
        "frozen_from": day_start_s(frozen_from) if frozen_from else None,
        "frozen_to": day_start_s(frozen_until + timedelta(days=1)) if frozen_until else None,
    }
