"""Slovenian work-free days (dela prosti dnevi) under the Public Holidays and Work-Free
Days Act (Zakon o praznikih in dela prostih dnevih v Republiki Sloveniji).

2 January was not work-free from 2013 to 2016 (Public Finance Balance Act, 2012) and was
reinstated from 2017. Sources in docs/attendance.md.

One calendar for every module that counts working days: the POS subsequent-submit
deadline (agent/pos/deadline.py) and the E-EDC timesheets (cloud_bridge/attendance/).
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

_FIXED: dict[tuple[int, int], str] = {
    (1, 1): "novo leto",
    (1, 2): "novo leto",
    (2, 8): "Prešernov dan, slovenski kulturni praznik",
    (4, 27): "dan upora proti okupatorju",
    (5, 1): "praznik dela",
    (5, 2): "praznik dela",
    (6, 25): "dan državnosti",
    (8, 15): "Marijino vnebovzetje",
    (10, 31): "dan reformacije",
    (11, 1): "dan spomina na mrtve",
    (12, 25): "božič",
    (12, 26): "dan samostojnosti in enotnosti",
}

# 2 January was a working day in these years (ZJF, May 2012 … reinstated from 2017)
_NO_JAN_2 = range(2013, 2017)


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


@cache
def holidays(year: int) -> dict[date, str]:
    """Every work-free day of ``year`` with its Slovenian name."""
    days = {date(year, m, d): name for (m, d), name in _FIXED.items()}
    if year in _NO_JAN_2:
        del days[date(year, 1, 2)]
    easter = easter_sunday(year)
    days[easter] = "velikonočna nedelja"
    days[easter + timedelta(days=1)] = "velikonočni ponedeljek"
    days[easter + timedelta(days=49)] = "binkoštna nedelja (binkošti)"
    return dict(sorted(days.items()))


def holiday_name(day: date) -> str | None:
    return holidays(day.year).get(day)


def is_holiday(day: date) -> bool:
    return day in holidays(day.year)
