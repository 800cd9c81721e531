"""Working-time totals from an employee's punches: pure, no database.

A shift runs from an arrival to the next departure and belongs to the local calendar day
of its arrival (a night shift that crosses midnight is one shift of the day it began).
Night, Sunday and holiday hours are measured on the clock instead: the part of a shift
that falls between 23:00 and 06:00, on a Sunday or on a work-free day, in
Europe/Ljubljana time. Everything is measured in real elapsed time (UTC), so a DST day
has 23 or 25 hours. Rules and sources: docs/attendance.md.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from contracts.punch_types import PunchType
from contracts.work_free_days import holiday_name

LJUBLJANA = ZoneInfo("Europe/Ljubljana")


class AbsenceKind(enum.StrEnum):
    ANNUAL_LEAVE = "annual_leave"  # letni dopust
    SICK_LEAVE = "sick_leave"  # bolniška odsotnost
    OTHER = "other"  # other justified absence, described in the note
    HOLIDAY = "holiday"  # a weekday work-free day not worked: paid, not entered by anyone


@dataclass(frozen=True, slots=True)
class Punch:
    employee: str
    at: datetime  # aware
    kind: PunchType
    source: str  # "device#seq" for a terminal punch, "correction#id" for a cloud one


@dataclass(frozen=True, slots=True)
class Absence:
    employee: str
    kind: AbsenceKind
    first_day: date
    last_day: date
    hours_per_day: float | None = None  # None: the rules' daily hours
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Rules:
    tz: ZoneInfo = LJUBLJANA
    daily_hours: float = 8.0
    # ZDR-1 art. 150: night work is work between 23:00 and 06:00 the next day
    night_start: time = time(23, 0)
    night_end: time = time(6, 0)
    # ZDR-1 art. 154: the 30-minute break of a full-time worker counts as working time
    paid_break_minutes: int = 30
    # an arrival with no departure this long after it is reported as a missing departure
    missing_departure_after: timedelta = timedelta(hours=16)
    # a weekday work-free day that was not worked counts as paid holiday hours
    paid_holidays: bool = True
    # ZDR-1 art. 143/144: overtime is work over the full time of 40 h a week ("week");
    # an employer whose schedule or collective agreement counts it per day over
    # ``daily_hours`` chooses "day" (docs/attendance.md, "Overtime")
    overtime_basis: str = "week"
    weekly_hours: float = 40.0
    # ZDR-1 art. 155(2): where working time is unevenly distributed or temporarily
    # redistributed, the daily rest due is 11 h instead of 12 (legal_alerts.py)
    uneven_schedule: bool = False

    def __post_init__(self) -> None:
        if self.overtime_basis not in OVERTIME_BASES:
            raise ValueError(f"overtime_basis must be one of {', '.join(OVERTIME_BASES)}")
        if not 0 < self.daily_hours <= 24 or not 0 < self.weekly_hours <= 7 * 24:
            raise ValueError("daily_hours must be in (0, 24] and weekly_hours in (0, 168]")


OVERTIME_BASES = ("week", "day")


def whole_minutes(seconds: float) -> float:
    """Seconds rounded half-up to whole minutes (the unit of every reported figure, so
    that printed day rows add up to the printed totals)."""
    return math.floor(seconds / 60 + 0.5) * 60.0


@dataclass(frozen=True, slots=True)
class Shift:
    employee: str
    day: date  # local date of the arrival
    start: datetime
    end: datetime | None  # None: no departure (see alert)
    worked_s: float = 0.0  # work + official trip + the paid part of breaks
    break_s: float = 0.0
    trip_s: float = 0.0  # official trip / field work (counts as worked)
    private_s: float = 0.0  # private leave during the shift (not worked)
    night_s: float = 0.0
    sunday_s: float = 0.0
    holiday_s: float = 0.0
    alerts: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    holiday: str | None
    start: datetime | None = None  # local
    end: datetime | None = None
    worked_s: float = 0.0
    break_s: float = 0.0
    trip_s: float = 0.0
    private_s: float = 0.0
    overtime_s: float = 0.0
    night_s: float = 0.0
    sunday_s: float = 0.0
    holiday_s: float = 0.0
    absences: tuple[tuple[AbsenceKind, float], ...] = ()  # (kind, seconds), one per kind
    alerts: tuple[str, ...] = ()
    # running totals of worked time (ZEPDSV-A): this ISO week so far, across the month
    # boundary, and this month so far
    week_worked_s: float = 0.0
    month_worked_s: float = 0.0
    # the punches of the day's shifts, with every correction applied to each
    # ("clock-1#5~correction#3~correction#4")
    sources: tuple[str, ...] = ()

    @property
    def absence_s(self) -> float:
        return sum(s for _, s in self.absences)


@dataclass(frozen=True, slots=True)
class Figure:
    """One time figure of a day row and of the totals. FIGURES is the one list of them:
    the totals add them up, and the CSV, the HTML and the JSON print them in its order."""
    name: str  # attribute name + "_s"; CSV column name + "_h"; JSON key name + "_min"
    heading: str  # the printed report's summary column (Slovenian)
    short: str  # the printed report's day table column

    @property
    def attr(self) -> str:
        return f"{self.name}_s"


FIGURES = (
    Figure("worked", "Opravljene ure", "Opravljene"),
    Figure("overtime", "Nadure", "Nadure"),
    Figure("night", "Nočne", "Nočne"),
    Figure("sunday", "Nedeljske", "Nedeljske"),
    Figure("holiday", "Praznične", "Praznične"),
    Figure("break", "Odmor", "Odmor"),
    Figure("trip", "Službeni izhod", "Službeni"),
    Figure("private", "Zasebni izhod", "Zasebni"),
)
TOTAL_FIELDS = tuple(f.attr for f in FIGURES)


@dataclass(frozen=True, slots=True)
class AbsenceColumn:
    """An absence kind as a column of the CSV and of the printed summary."""
    kind: AbsenceKind
    csv_name: str
    heading: str


ABSENCE_COLUMNS = (
    AbsenceColumn(AbsenceKind.ANNUAL_LEAVE, "annual_leave_h", "Dopust"),
    AbsenceColumn(AbsenceKind.SICK_LEAVE, "sick_leave_h", "Bolniška"),
    AbsenceColumn(AbsenceKind.OTHER, "other_absence_h", "Druga odsotnost"),
    AbsenceColumn(AbsenceKind.HOLIDAY, "holiday_leave_h", "Praznik"),
)


@dataclass(frozen=True, slots=True)
class Totals:
    worked_s: float = 0.0
    break_s: float = 0.0
    trip_s: float = 0.0
    private_s: float = 0.0
    overtime_s: float = 0.0
    night_s: float = 0.0
    sunday_s: float = 0.0
    holiday_s: float = 0.0
    days_worked: int = 0
    absences: dict[str, float] = field(default_factory=dict)  # kind -> seconds
    alerts: int = 0

    @staticmethod
    def of(days: Iterable[Day]) -> Totals:
        sums = dict.fromkeys(TOTAL_FIELDS, 0.0)
        absences: dict[str, float] = {}
        worked = alerts = 0
        for d in days:
            for f in TOTAL_FIELDS:
                sums[f] += getattr(d, f)
            for kind, secs in d.absences:
                absences[kind.value] = absences.get(kind.value, 0.0) + secs
            worked += d.start is not None
            alerts += len(d.alerts)
        return Totals(**sums, days_worked=worked, absences=absences, alerts=alerts)

    def plus(self, other: Totals) -> Totals:
        sums = {f: getattr(self, f) + getattr(other, f) for f in TOTAL_FIELDS}
        absences = dict(self.absences)
        for k, v in other.absences.items():
            absences[k] = absences.get(k, 0.0) + v
        return Totals(**sums, days_worked=self.days_worked + other.days_worked,
                      absences=absences, alerts=self.alerts + other.alerts)


@dataclass(frozen=True, slots=True)
class Timesheet:
    employee: str
    year: int
    month: int
    days: tuple[Day, ...]
    totals: Totals

    @property
    def alerts(self) -> list[tuple[date, str]]:
        return [(d.day, a) for d in self.days for a in d.alerts]


# -- clock windows ----------------------------------------------------------------------

def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def _overlap(a0: datetime, a1: datetime, b0: datetime, b1: datetime) -> float:
    return max(0.0, (min(a1, b1) - max(a0, b0)).total_seconds())


def _local_days(start: datetime, end: datetime, tz: ZoneInfo) -> list[date]:
    first, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _night_s(start: datetime, end: datetime, rules: Rules) -> float:
    """Seconds of [start, end) inside the night window of any local day it touches."""
    tz = rules.tz
    total = 0.0
    for d in _local_days(start - timedelta(days=1), end, tz):
        w0 = datetime.combine(d, rules.night_start, tz).astimezone(UTC)
        end_day = d + timedelta(days=1) if rules.night_end <= rules.night_start else d
        w1 = datetime.combine(end_day, rules.night_end, tz).astimezone(UTC)
        total += _overlap(start, end, w0, w1)
    return total


def _calendar_s(start: datetime, end: datetime, rules: Rules) -> tuple[float, float]:
    """(Sunday seconds, work-free-day seconds) of [start, end): whole local days, so a
    DST Sunday has 23 or 25 hours."""
    sunday = holiday = 0.0
    for d in _local_days(start, end, rules.tz):
        is_sunday, is_holiday = d.weekday() == 6, holiday_name(d) is not None
        if not (is_sunday or is_holiday):
            continue
        secs = _overlap(start, end, _local_midnight(d, rules.tz),
                        _local_midnight(d + timedelta(days=1), rules.tz))
        sunday += secs if is_sunday else 0.0
        holiday += secs if is_holiday else 0.0
    return sunday, holiday


# -- shifts -------------------------------------------------------------------------------

_STATE_AFTER = {
    PunchType.ARRIVAL: "work", PunchType.BREAK_END: "work", PunchType.TRIP_END: "work",
    PunchType.PRIVATE_END: "work", PunchType.BREAK_START: "break",
    PunchType.TRIP_START: "trip", PunchType.PRIVATE_START: "private",
}
_OPENS = {PunchType.BREAK_START: "break", PunchType.TRIP_START: "trip",
          PunchType.PRIVATE_START: "private"}
_CLOSES = {PunchType.BREAK_END: "break", PunchType.TRIP_END: "trip",
           PunchType.PRIVATE_END: "private"}
_NAMES = {"break": "break", "trip": "official trip", "private": "private leave"}


def _close_shift(employee: str, punches: list[Punch], end: Punch | None, rules: Rules,
                 alerts: list[str]) -> Shift:
    """Totals of one shift: ``punches`` from its arrival, ``end`` its departure."""
    start = punches[0].at.astimezone(UTC)
    day = start.astimezone(rules.tz).date()
    sources = tuple(p.source for p in punches) + ((end.source,) if end else ())
    if end is None:
        return Shift(employee, day, start, None, alerts=tuple(alerts), sources=sources)
    # (from, to, state) pieces between consecutive punches
    pieces: list[tuple[datetime, datetime, str]] = []
    timeline = [*punches, end]
    state = "work"
    for here, nxt in itertools.pairwise(timeline):
        state = _STATE_AFTER.get(here.kind, state)
        pieces.append((here.at.astimezone(UTC), nxt.at.astimezone(UTC), state))
    sums = {"work": 0.0, "break": 0.0, "trip": 0.0, "private": 0.0}
    paid_left = rules.paid_break_minutes * 60.0
    counted: list[tuple[datetime, datetime]] = []  # the intervals that are working time
    for a, b, st in pieces:
        secs = (b - a).total_seconds()
        sums[st] += secs
        if st in ("work", "trip"):
            counted.append((a, b))
        elif st == "break" and paid_left > 0:
            paid = min(secs, paid_left)
            paid_left -= paid
            counted.append((a, a + timedelta(seconds=paid)))
    worked = sum((b - a).total_seconds() for a, b in counted)
    night = sunday = holiday = 0.0
    for a, b in counted:
        night += _night_s(a, b, rules)
        s, h = _calendar_s(a, b, rules)
        sunday += s
        holiday += h
    end_at = end.at.astimezone(UTC)
    if end_at - start > rules.missing_departure_after:
        alerts.append(f"departure {(end_at - start).total_seconds() / 3600:.1f} h after the "
                      "arrival: check the record")
    return Shift(employee, day, start, end_at, worked, sums["break"], sums["trip"],
                 sums["private"], night, sunday, holiday, tuple(alerts), sources)


def shifts(employee: str, punches: Sequence[Punch], rules: Rules,
           as_of: datetime) -> list[Shift]:
    """Split one employee's punches (any order; sorted here by time) into shifts.

    A shift with no departure is returned with ``end=None`` and a missing-departure
    alert once ``rules.missing_departure_after`` has passed (``as_of``) or the next
    arrival came; until then it is in progress and is not returned."""
    out: list[Shift] = []
    current: list[Punch] = []
    alerts: list[str] = []
    open_part: str | None = None
    # compared in UTC: aware datetimes of one zone compare as wall times
    for p in sorted(punches, key=lambda p: (p.at.astimezone(UTC), p.source)):
        if p.kind is PunchType.ARRIVAL:
            if current:
                out.append(_close_shift(employee, current, None, rules,
                                        [*alerts, "missing departure (a new arrival came "
                                         f"at {p.at.astimezone(rules.tz):%d.%m. %H:%M})"]))
            current, alerts, open_part = [p], [], None
            continue
        if not current:
            out.append(Shift(employee, p.at.astimezone(rules.tz).date(), p.at, p.at,
                             alerts=(f"{p.kind.value} without an arrival: ignored",),
                             sources=(p.source,)))
            continue
        if p.kind is PunchType.DEPARTURE:
            if open_part is not None:
                alerts.append(f"{_NAMES[open_part]} not ended before the departure")
            out.append(_close_shift(employee, current, p, rules, alerts))
            current, alerts, open_part = [], [], None
            continue
        if p.kind in _CLOSES and open_part != _CLOSES[p.kind]:
            alerts.append(f"{p.kind.value} without its start")
        open_part = _OPENS.get(p.kind)
        current.append(p)
    if current and (as_of.astimezone(UTC) - current[0].at.astimezone(UTC)
                    > rules.missing_departure_after):
        hours = rules.missing_departure_after.total_seconds() / 3600
        out.append(_close_shift(employee, current, None, rules,
                                [*alerts, f"missing departure (none within {hours:g} h of "
                                 "the arrival)"]))
    return out


def absence_days(absence: Absence, rules: Rules) -> dict[date, float]:
    """Seconds of absence per working day (Monday to Friday, not a work-free day)."""
    hours = absence.hours_per_day if absence.hours_per_day is not None else rules.daily_hours
    out: dict[date, float] = {}
    d = absence.first_day
    while d <= absence.last_day:
        if d.weekday() < 5 and holiday_name(d) is None:
            out[d] = hours * 3600.0
        d += timedelta(days=1)
    return out


def month_days(year: int, month: int) -> list[date]:
    first = date(year, month, 1)
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return [first + timedelta(days=i) for i in range((nxt - first).days)]


def report_days(year: int, month: int) -> list[date]:
    """The month's days, preceded by those of its first week that belong to the month
    before (needed for the running weekly total)."""
    days = month_days(year, month)
    return [days[0] - timedelta(days=days[0].weekday() - i)
            for i in range(days[0].weekday())] + days


def month_bounds(year: int, month: int, rules: Rules) -> tuple[datetime, datetime]:
    """UTC bounds of the arrivals a month's report counts: from local midnight of the
    Monday of its first week (for the running weekly total) to local midnight after its
    last day. A shift belongs to the month of its arrival, so the report reads every
    punch of the shifts that start in these bounds, however far they run past the end,
    and none of a shift that started before them (see ``unsettled_edges``)."""
    days = report_days(year, month)
    return (_local_midnight(days[0], rules.tz),
            _local_midnight(days[-1] + timedelta(days=1), rules.tz))


_ANCHORS = (PunchType.ARRIVAL, PunchType.DEPARTURE)


def unsettled_edges(punches: Sequence[Punch], start: datetime, end: datetime
                    ) -> tuple[bool, bool]:
    """Whether one employee's punches read so far (sorted by time) leave a shift cut at
    the edges of [start, end): (earlier punches are needed, later punches are needed).

    Earlier: a punch at or after ``start`` that is not an arrival comes before the first
    arrival or departure read, so it may belong to a shift that began before ``start``.
    Later: the last arrival before ``end`` has no arrival or departure after it, so its
    shift (which belongs to the period) may not be complete."""
    need_earlier = False
    for p in punches:
        if p.kind in _ANCHORS:
            need_earlier = p.kind is PunchType.DEPARTURE and p.at >= start
            break
        if p.at >= start:
            need_earlier = True
            break
    anchors = [p for p in punches if p.kind in _ANCHORS]
    before_end = [p for p in anchors if p.at < end]
    need_later = (bool(before_end) and before_end[-1].kind is PunchType.ARRIVAL
                  and before_end[-1] is anchors[-1])
    return need_earlier, need_later


def _overtime_s(worked_s: float, week_before_s: float, rules: Rules) -> float:
    """The day's overtime: over the daily hours ("day"), or the part of the day that
    takes the ISO week past the weekly hours ("week", ZDR-1 art. 143/144)."""
    if rules.overtime_basis == "day":
        return max(0.0, worked_s - rules.daily_hours * 3600.0)
    full = rules.weekly_hours * 3600.0
    return max(0.0, week_before_s + worked_s - max(full, week_before_s))


def _absences_by_day(absences: Sequence[Absence], rules: Rules
                     ) -> dict[date, dict[AbsenceKind, float]]:
    """Absence seconds per day and kind; two absences of one kind on a day add up."""
    out: dict[date, dict[AbsenceKind, float]] = {}
    for a in sorted(absences, key=lambda a: (a.first_day, a.id or 0)):
        for d, secs in absence_days(a, rules).items():
            kinds = out.setdefault(d, {})
            kinds[a.kind] = kinds.get(a.kind, 0.0) + secs
    return out


def timesheet(employee: str, year: int, month: int, punches: Sequence[Punch],
              absences: Sequence[Absence], rules: Rules, as_of: datetime) -> Timesheet:
    """One employee's month: a row per calendar day and the totals. ``punches`` must hold
    every punch of the shifts that begin within ``month_bounds`` (the first week from
    its Monday), ``absences`` those that touch it. Every figure of a day row is rounded
    half-up to whole minutes; the totals and running totals are sums of the rows."""
    by_day: dict[date, list[Shift]] = {}
    for s in shifts(employee, punches, rules, as_of):
        by_day.setdefault(s.day, []).append(s)
    absent = _absences_by_day(absences, rules)
    days: list[Day] = []
    daily = whole_minutes(rules.daily_hours * 3600.0)
    week = month_run = 0.0
    for d in report_days(year, month):
        holiday = holiday_name(d)
        day_shifts = [s for s in by_day.get(d, []) if s.end is None or s.end > s.start]
        alerts = tuple(a for s in by_day.get(d, []) for a in s.alerts)
        sums = {f: whole_minutes(sum(getattr(s, f) for s in day_shifts))
                for f in TOTAL_FIELDS if f != "overtime_s"}
        day_absences = tuple((k, whole_minutes(v)) for k, v in absent.get(d, {}).items())
        if (rules.paid_holidays and holiday and d.weekday() < 5 and not day_shifts
                and not day_absences):
            day_absences = ((AbsenceKind.HOLIDAY, daily),)
        starts = [s.start for s in day_shifts]
        ends = [s.end for s in day_shifts if s.end is not None]
        week_before = 0.0 if d.weekday() == 0 else week
        week = week_before + sums["worked_s"]
        if d.month != month:
            continue  # the previous month's days of the first week count for the week only
        month_run += sums["worked_s"]
        days.append(Day(
            d, holiday,
            start=min(starts).astimezone(rules.tz) if starts else None,
            end=max(ends).astimezone(rules.tz) if ends else None,
            overtime_s=_overtime_s(sums["worked_s"], week_before, rules),
            absences=day_absences, alerts=alerts, week_worked_s=week,
            month_worked_s=month_run,
            sources=tuple(src for s in by_day.get(d, []) for src in s.sources), **sums))
    return Timesheet(employee, year, month, tuple(days), Totals.of(days))
