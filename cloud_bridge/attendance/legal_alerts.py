"""Alerts a manager must act on, from an employee's computed days (timesheet.Day):

- a missing departure (the timesheet's own alert);
- daily rest under 12 hours between a departure and the next arrival (ZDR-1 art. 155(1)),
  under 11 hours where the employer's working time is unevenly distributed or temporarily
  redistributed (art. 155(2), ``uneven_schedule``);
- a calendar week (Monday-Sunday) without 24 uninterrupted hours of rest
  (ZDR-1 art. 156(1)), unless the two weeks it makes 14 consecutive days with (the week
  before or the week after) give 24 h on average (art. 156(3));
- overtime over 8 h in a week, 20 h in a month or 170 h in a year (ZDR-1 art. 144);
- a shift of 4 hours or more worked without a break recorded (ZDR-1 art. 154(1)-(2)).

Pure: the caller passes the days (the month, the month before it for the weeks that
cross into it and, for the yearly limit, the overtime of the year before it).
docs/attendance.md, "Alerts", lists the rules and what they omit.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from cloud_bridge.attendance.timesheet import LJUBLJANA, Day

H = 3600.0
DAILY_REST = timedelta(hours=12)
DAILY_REST_UNEVEN = timedelta(hours=11)  # ZDR-1 art. 155(2)
WEEKLY_REST = timedelta(hours=24)
OVERTIME_WEEK_S, OVERTIME_MONTH_S, OVERTIME_YEAR_S = 8 * H, 20 * H, 170 * H
BREAK_FROM_S = 4 * H


@dataclass(frozen=True, slots=True)
class Alert:
    employee: str
    day: date  # the day it is about (for a week: its Monday; month/year: the month's 1st)
    # missing_departure | daily_rest | daily_rest_uneven | weekly_rest | overtime_week |
    # overtime_month | overtime_year | no_break
    code: str
    hours: float = 0.0  # the rest or overtime it found

    @property
    def key(self) -> str:
        """Unique per employee and fact: the same alert is never e-mailed twice."""
        return f"edc:{self.employee}:{self.code}:{self.day.isoformat()}"


def _rests(days: Sequence[Day]) -> list[tuple[datetime, datetime]]:
    """(departure, next arrival) gaps between the days' shifts."""
    worked = [d for d in days if d.start is not None and d.end is not None]
    return [(a.end, b.start) for a, b in itertools.pairwise(worked)
            if a.end is not None and b.start is not None]


def _week_rests(days: Sequence[Day]) -> dict[date, timedelta]:
    """The longest uninterrupted rest of each calendar week all seven days of which are in
    ``days``, by its Monday."""
    weeks: dict[date, list[Day]] = {}
    for d in days:
        weeks.setdefault(d.day - timedelta(days=d.day.weekday()), []).append(d)
    rests: dict[date, timedelta] = {}
    for monday, week in weeks.items():
        if len({d.day for d in week}) < 7:
            continue  # a week cut by the days given is judged where it is whole
        start = datetime.combine(monday, datetime.min.time(), LJUBLJANA)
        edges = [start]
        for d in sorted(week, key=lambda d: d.day):
            if d.start is not None and d.end is not None:
                edges += [d.start, d.end]
        edges.append(start + timedelta(days=7))
        rests[monday] = max(b - a for a, b in zip(edges[::2], edges[1::2], strict=True))
    return rests


def _weekly_rest(employee: str, days: Sequence[Day], first: date) -> list[Alert]:
    """Weeks ending on or after ``first`` whose longest rest is under 24 h, also on
    average with the week before and with the week after (ZDR-1 art. 156(1), (3))."""
    rests = _week_rests(days)
    out: list[Alert] = []
    for monday, longest in sorted(rests.items()):
        if monday + timedelta(days=6) < first or longest >= WEEKLY_REST:
            continue
        fortnights = [longest + rests[m] for m in (monday - timedelta(days=7),
                                                   monday + timedelta(days=7)) if m in rests]
        if any(two >= 2 * WEEKLY_REST for two in fortnights):
            continue  # 24 h on average over 14 consecutive days
        out.append(Alert(employee, monday, "weekly_rest", longest.total_seconds() / H))
    return out


def _overtime(employee: str, days: Sequence[Day], year_before_s: float) -> list[Alert]:
    out: list[Alert] = []
    weeks: dict[date, float] = {}
    for d in days:
        monday = d.day - timedelta(days=d.day.weekday())
        weeks[monday] = weeks.get(monday, 0.0) + d.overtime_s
    out += [Alert(employee, monday, "overtime_week", s / H)
            for monday, s in sorted(weeks.items()) if s > OVERTIME_WEEK_S]
    month_s = sum(d.overtime_s for d in days)
    first = days[0].day.replace(day=1) if days else date.min
    if month_s > OVERTIME_MONTH_S:
        out.append(Alert(employee, first, "overtime_month", month_s / H))
    if year_before_s + month_s > OVERTIME_YEAR_S:
        out.append(Alert(employee, first, "overtime_year", (year_before_s + month_s) / H))
    return out


def legal_alerts(employee: str, days: Sequence[Day], overtime_year_before_s: float = 0.0,
                 *, uneven_schedule: bool = False, days_before: Sequence[Day] = ()
                 ) -> list[Alert]:
    """Every alert of the employee's days of one month, in day order. ``days_before``
    (the month before) only completes the weeks that cross into this month, for the
    weekly rest; ``uneven_schedule`` lowers the daily rest to 11 h (ZDR-1 art. 155(2))."""
    out = [Alert(employee, d.day, "missing_departure") for d in days
           if any(a.startswith("missing departure") for a in d.alerts)]
    rest, code = ((DAILY_REST_UNEVEN, "daily_rest_uneven") if uneven_schedule
                  else (DAILY_REST, "daily_rest"))
    first = min((d.day for d in days), default=date.max)
    before = [d for d in days_before if d.day < first]
    # the rest from the month before's last departure to this month's first arrival too
    out += [Alert(employee, dep.date(), code, (arr - dep).total_seconds() / H)
            for dep, arr in _rests([*before[-1:], *days]) if arr - dep < rest]
    out += _weekly_rest(employee, [*before, *days], first)
    out += _overtime(employee, days, overtime_year_before_s)
    out += [Alert(employee, d.day, "no_break", d.worked_s / H) for d in days
            if d.worked_s >= BREAK_FROM_S and d.break_s == 0]
    return sorted(out, key=lambda a: (a.day, a.code))
