"""The Jinja2 environment every bridge page is rendered with: autoescaping, the gettext
extension bound to the request's language (contracts/i18n.py), and the filters that
format dates, times, numbers and money for that language. Each page module builds its
templates here with its own folder first and the shared folder (this package's
``templates``: ``_form.html`` macros, ``error.html``) behind it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from cloud_bridge.web.roles import role_name
from contracts.i18n import (
    LANGUAGE_NAMES,
    LANGUAGES,
    current_language,
    format_clock,
    format_day,
    format_moment,
    format_money,
    format_number,
    gettext,
    ngettext,
)
from contracts.reasons import explain

SHARED_TEMPLATES = Path(__file__).parent / "templates"
# sites are in Slovenia; the pages show their wall-clock time
SITE_TZ = ZoneInfo("Europe/Ljubljana")


def _from_ms(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def moment_ms(ms: int | None) -> str:
    """Epoch milliseconds as the site's local date and time."""
    return format_moment(_from_ms(ms), SITE_TZ)


def moment_iso(ts: str | None) -> str:
    """An event's UTC ISO time as the site's local date and time."""
    if not ts:
        return "—"
    try:
        when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts
    return format_moment(when, SITE_TZ)


def clock_ms(ms: int | None) -> str:
    return format_clock(_from_ms(ms), SITE_TZ)


def day_of(value: date | datetime | str | int | None) -> str:
    """A date (a date, an ISO string, or epoch seconds of an entitlement) as 3. 12. 2026."""
    if value is None or value == "":
        return "—"
    if isinstance(value, int):
        return format_day(datetime.fromtimestamp(value, SITE_TZ).date())
    if isinstance(value, datetime):
        return format_day(value.astimezone(SITE_TZ).date())
    if isinstance(value, date):
        return format_day(value)
    try:
        return format_day(date.fromisoformat(value[:10]))
    except ValueError:
        return value


def page_templates(directory: Path) -> Jinja2Templates:
    loader = ChoiceLoader([FileSystemLoader(directory), FileSystemLoader(SHARED_TEMPLATES)])
    env = Environment(loader=loader, autoescape=select_autoescape(default=True),
                      extensions=["jinja2.ext.i18n"])
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update({
        "moment_ms": moment_ms, "moment": moment_iso, "clock_ms": clock_ms, "day": day_of,
        "money": format_money, "number": format_number, "reason": explain,
    })
    env.globals.update({"current_language": current_language, "role_name": role_name,
                        "LANGUAGES": LANGUAGES, "LANGUAGE_NAMES": LANGUAGE_NAMES})
    return Jinja2Templates(env=env)
