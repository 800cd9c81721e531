"""The legal deadline for subsequent submission: two working days after issue.

A receipt issued without EOR (FURS unreachable) must be sent again, marked
SubsequentSubmit, within two working days (ZDavPR; spec v3.2 R_3.13 defines the mark).
Working days are Monday-Friday except Slovenian public holidays that are work-free days
(Zakon o praznikih in dela prostih dnevih). The deadline is the end (24:00 Ljubljana time)
of the second working day after the issue day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

LJUBLJANA = ZoneInfo("Europe/Ljubljana")

_FIXED = ((1, 1), (1, 2), (2, 8), (4, 27), (5, 1), (5, 2), (6, 25), (8, 15), (10, 31),
          (11, 1), (12, 25), (12, 26))


def _easter(year: int) -> date:
    # anonymous Gregorian algorithm (Meeus/Jones/Butcher)
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=64)
def holidays(year: int) -> frozenset[date]:
    easter = _easter(year)
    # Easter Sunday and Whit Sunday fall on Sundays anyway; Easter Monday does not
    return frozenset({date(year, m, d) for m, d in _FIXED} | {easter + timedelta(days=1)})


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in holidays(day.year)


def subsequent_deadline(issued_at: datetime, working_days: int = 2) -> datetime:
    day = issued_at.astimezone(LJUBLJANA).date()
    counted = 0
    while counted < working_days:
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return datetime.combine(day + timedelta(days=1), time(0, 0), LJUBLJANA)
