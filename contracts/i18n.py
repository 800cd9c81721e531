"""Languages for everything a person reads: gettext catalogs through Babel, and dates,
numbers and money formatted for the reader's locale.

Slovenian is the default; English is the switch. Source strings (msgids) are English,
marked with ``gettext``/``_`` where they are shown, or with ``N_`` where they are
defined as constants and translated when shown. The catalogs are ``.po`` files under
``contracts/locale/<lang>/LC_MESSAGES/<domain>.po``, one domain per area (web,
attendance, school, kiosk, reasons …) so areas are edited apart; all domains of a
language are merged into one set of translations. English has no catalog: its text is
the msgid itself.

The language of the current request, page or printout lives in a context variable
(``use_language``), so code deep in a call chain translates without being handed it.
``tests/i18n`` fails on any marked string without a Slovenian translation and on any
literal text in a served template.
"""

from __future__ import annotations

import gettext as _gettext
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, tzinfo
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from babel.dates import format_date as _babel_date
from babel.dates import format_datetime as _babel_datetime
from babel.dates import format_time as _babel_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import Translations

LANGUAGES: tuple[str, ...] = ("sl", "en")
DEFAULT_LANGUAGE = "sl"
LANGUAGE_NAMES = {"sl": "Slovenščina", "en": "English"}
# the Babel locale each language formats with (English readers here are in Europe)
_BABEL_LOCALE = {"sl": "sl_SI", "en": "en_GB"}
LOCALE_DIR = Path(__file__).parent / "locale"

_current: ContextVar[str | None] = ContextVar("language", default=None)
# the language of a process with one reader (a device's display and printouts, a CLI),
# used where no request or block chose one: threads do not inherit context variables
_process_language = [DEFAULT_LANGUAGE]


def negotiate(wanted: str | None) -> str:
    """The supported language for a cookie, a user's setting or a query parameter."""
    code = (wanted or "").strip().lower()[:2]
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def current_language() -> str:
    return _current.get() or _process_language[0]


def set_process_language(lang: str | None) -> str:
    """The language of this whole process (a device's ``language`` setting)."""
    _process_language[0] = negotiate(lang)
    return _process_language[0]


def set_language(lang: str | None) -> str:
    """Set the language for the rest of this context (a request, a CLI run)."""
    chosen = negotiate(lang)
    _current.set(chosen)
    return chosen


@contextmanager
def use_language(lang: str | None) -> Iterator[str]:
    """Translate in ``lang`` inside the block (a printout for a member, a test)."""
    token = _current.set(negotiate(lang))
    try:
        yield current_language()
    finally:
        _current.reset(token)


def catalog_files(lang: str) -> list[Path]:
    return sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po"))


@lru_cache(maxsize=len(LANGUAGES))
def translations(lang: str) -> _gettext.NullTranslations:
    """All domains of ``lang`` merged; English (and a language without catalogs) is the
    identity. Read from the .po files with Babel (fuzzy entries are left out), so no
    compiled .mo file has to be kept in step with them."""
    merged: Translations | None = None
    for path in catalog_files(lang):
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=lang, domain=path.stem)
        buffer = io.BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)
        buffer.seek(0)
        part = Translations(fp=buffer, domain=path.stem)
        if merged is None:
            merged = part
        else:
            merged.merge(part)
    return merged if merged is not None else _gettext.NullTranslations()


@lru_cache(maxsize=len(LANGUAGES))
def script_catalog(lang: str) -> dict[str, str | list[str]]:
    """The translations of ``lang`` as a dict for a page's script (served as JSON):
    msgid to text, or for a plural "singular|plural" to the list of forms. The plural
    rule of the language is ``plural_rule`` (a JavaScript-safe C expression of n)."""
    found: dict[str, str | list[str]] = {}
    for path in catalog_files(negotiate(lang)):
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=lang, domain=path.stem)
        for message in catalog:
            if not message.id or message.fuzzy or not message.string:
                continue
            if isinstance(message.id, tuple):
                found["|".join(message.id)] = list(message.string)
            else:
                found[str(message.id)] = str(message.string)
    return found


def plural_rule(lang: str) -> str:
    """The gettext plural expression of ``lang``, for scripts (uses only n, ?:, %, ==)."""
    files = catalog_files(negotiate(lang))
    if not files:
        return "n == 1 ? 0 : 1"
    with files[0].open("rb") as fh:
        return str(read_po(fh, locale=lang).plural_expr)


def gettext(message: str) -> str:
    return translations(current_language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_language()).ngettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:
    """Mark a constant for extraction; it is translated where it is shown."""
    return message


def babel_locale(lang: str | None = None) -> str:
    return _BABEL_LOCALE[negotiate(lang or current_language())]


def format_day(day: date | None, style: str = "short") -> str:
    """3. 12. 2026 in Slovenian, 03/12/2026 in English."""
    return _babel_date(day, style, locale=babel_locale()) if day else "—"


def format_moment(moment: datetime | None, tz: tzinfo, style: str = "short") -> str:
    """A moment as the wall-clock time of ``tz`` (the site's zone), with seconds."""
    if moment is None:
        return "—"
    local = moment.astimezone(tz)
    day = _babel_date(local.date(), style, locale=babel_locale())
    return f"{day} {_babel_time(local, 'medium', tzinfo=tz, locale=babel_locale())}"


def format_clock(moment: datetime | None, tz: tzinfo) -> str:
    """Only the time of day, to the minute (14:05)."""
    return _babel_time(moment, "short", tzinfo=tz, locale=babel_locale()) if moment else "—"


def format_datetime_long(moment: datetime, tz: tzinfo) -> str:
    return _babel_datetime(moment, "long", tzinfo=tz, locale=babel_locale())


def format_money(cents: int | None, currency: str = "EUR") -> str:
    """12,50 € in Slovenian, €12.50 in English."""
    if cents is None:
        return "—"
    return format_currency(Decimal(cents) / 100, currency, locale=babel_locale())


def format_number(value: float | int | Decimal | None, digits: int | None = None) -> str:
    if value is None:
        return "—"
    if digits is not None:
        pattern = "#,##0." + "0" * digits if digits else "#,##0"
        return format_decimal(value, format=pattern, locale=babel_locale())
    return format_decimal(value, locale=babel_locale())


_DAY_FORMS = (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),  # ISO (what date inputs post)
              re.compile(r"^(\d{1,2})\.\s*(\d{1,2})\.\s*(\d{4})\.?$"))  # 3. 12. 2026


def parse_day(text: str) -> date:
    """A date typed the Slovenian way (3. 12. 2026, 03.12.2026) or as ISO 2026-12-03.
    Raises ValueError (a message for a person) when it is not a real date."""
    cleaned = text.strip()
    iso, local = _DAY_FORMS
    if m := iso.match(cleaned):
        year, month, day = (int(g) for g in m.groups())
    elif m := local.match(cleaned):
        day, month, year = (int(g) for g in m.groups())
    else:
        raise ValueError(gettext("Enter a date as day. month. year, for example 3. 12. 2026."))
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(gettext("This date does not exist.")) from None
