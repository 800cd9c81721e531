"""Alerts a manager must act on, from an employee's computed days (timesheet.Day):

- a missing departure (the timesheet's own alert);
- daily rest under 12 hours between a departure and the next arrival (ZDR-1 art. 155(1));
- a calendar week (Monday-Sunday) without 24 uninterrupted hours of rest
  (ZDR-1 art. 156(1));
- overtime over 8 h in a week, 20 h in a month or 170 h in a year (ZDR-1 art. 144);
- a shift of 4 hours or more worked without a break recorded (ZDR-1 art. 154(1)-(2)).

Pure: the caller passes the days (the month and, for the yearly limit, the overtime of
the year before it). docs/attendance.md, "Alerts", lists the rules and what they omit.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from cloud_bridge.attendance.timesheet import LJUBLJANA, Day

H = 3600.0
DAILY_REST = timedelta(hours=12)
WEEKLY_REST = timedelta(hours=24)
OVERTIME_WEEK_S, OVERTIME_MONTH_S, OVERTIME_YEAR_S = 8 * H, 20 * H, 170 * H
BREAK_FROM_S = 4 * H


@dataclass(frozen=True, slots=True)
class Alert:
    employee: str
    day: date  # the day it is about (for a week: its Monday; month/year: the month's 1st)
    code: str  # missing_departure | daily_rest | weekly_rest | overtime_week | ... | no_break
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


def _weekly_rest(employee: str, days: Sequence[Day]) -> list[Alert]:
    out: list[Alert] = []
    weeks: dict[date, list[Day]] = {}
    for d in days:
        weeks.setdefault(d.day - timedelta(days=d.day.weekday()), []).append(d)
    for monday, week in sorted(weeks.items()):
        if len(week) < 7:
            continue  # a week cut by the month's edge is judged in the month it ends in
        start = datetime.combine(monday, datetime.min.time(), LJUBLJANA)
        end = start + timedelta(days=7)
        edges = [start]
        for d in week:
            if d.start is not None and d.end is not None:
                edges += [d.start, d.end]
        edges.append(end)
        longest = max(b - a for a, b in zip(edges[::2], edges[1::2], strict=True))
        if longest < WEEKLY_REST:
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


def legal_alerts(employee: str, days: Sequence[Day], overtime_year_before_s: float = 0.0
                 ) -> list[Alert]:
    """Every alert of the employee's days of one month, in day order."""
    out = [Alert(employee, d.day, "missing_departure") for d in days
           if any(a.startswith("missing departure") for a in d.alerts)]
    out += [Alert(employee, dep.date(), "daily_rest", (arr - dep).total_seconds() / H)
            for dep, arr in _rests(days) if arr - dep < DAILY_REST]
    out += _weekly_rest(employee, days)
    out += _overtime(employee, days, overtime_year_before_s)
    out += [Alert(employee, d.day, "no_break", d.worked_s / H) for d in days
            if d.worked_s >= BREAK_FROM_S and d.break_s == 0]
    return sorted(out, key=lambda a: (a.day, a.code))
