"""A deterministic month of punches for many employees, with the totals expected from
the plan itself.

The expected figures are counted minute by minute from the plan (each minute's local
wall time, weekday and date looked up one at a time), a different method from the
interval arithmetic of cloud_bridge/attendance/timesheet.py, so the two check each
other. The punches become hash-chained ``attendance.punch`` events of a few time clocks,
sealed exactly as agent/attendance/time_clock.py seals them.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.punch_chain import GENESIS, HEAD_EVENT, PUNCH_EVENT, punch_hash, sign_head

LJ = ZoneInfo("Europe/Ljubljana")
MIN = 60.0
# work-free days in reach of an October 2026 plan, written out by hand
WORK_FREE = {date(2026, 10, 31), date(2026, 11, 1)}


def ts(at: datetime) -> str:
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


@dataclass
class Expected:
    worked: float = 0.0
    overtime: float = 0.0
    night: float = 0.0
    sunday: float = 0.0
    holiday: float = 0.0
    breaks: float = 0.0
    trip: float = 0.0
    private: float = 0.0
    days_worked: int = 0
    alerts: int = 0
    absences: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedShift:
    employee: str
    start: datetime  # local, aware
    # (real minutes from start, punch type), the departure last unless it is missing
    marks: tuple[tuple[int, str], ...]
    missing_departure: bool = False


def count_shift(s: PlannedShift) -> dict[str, float]:
    """Minute by minute: which state, paid or not, night, Sunday, work-free day."""
    out = dict.fromkeys(("worked", "night", "sunday", "holiday", "breaks", "trip",
                         "private"), 0.0)
    if s.missing_departure:
        return out
    state, paid_break_left = "work", 30
    marks = dict(s.marks)
    end = max(marks)
    start_utc = s.start.astimezone(UTC)
    for m in range(end):
        kind = marks.get(m)
        if kind is not None:
            state = {"arrival": "work", "break_start": "break", "break_end": "work",
                     "trip_start": "trip", "trip_end": "work", "private_start": "private",
                     "private_end": "work"}[kind]
        wall = (start_utc + timedelta(minutes=m)).astimezone(LJ)
        counts = state in ("work", "trip")
        if state == "break":
            out["breaks"] += MIN
            if paid_break_left > 0:
                paid_break_left -= 1
                counts = True
        elif state == "trip":
            out["trip"] += MIN
        elif state == "private":
            out["private"] += MIN
        if counts:
            out["worked"] += MIN
            out["night"] += MIN if wall.hour >= 23 or wall.hour < 6 else 0
            out["sunday"] += MIN if wall.weekday() == 6 else 0
            out["holiday"] += MIN if wall.date() in WORK_FREE else 0
    return out


@dataclass
class MonthPlan:
    year: int
    month: int
    employees: list[str]
    shifts: list[PlannedShift]
    absences: list[tuple[str, str, date, date]]  # employee, kind, first, last
    devices: dict[str, str]  # employee -> time clock

    def expected(self, overtime_basis: str = "week") -> dict[str, Expected]:
        """Totals per employee. Overtime "day": over 8 h on a day; "week" (ZDR-1): the
        part of each day that takes its Monday-to-Sunday week past 40 h, counting the
        days of the week before the month too."""
        out = {e: Expected() for e in self.employees}
        per_day: dict[tuple[str, date], float] = defaultdict(float)
        for s in self.shifts:
            per_day[(s.employee, s.start.date())] += count_shift(s)["worked"]
            if (s.start.year, s.start.month) != (self.year, self.month):
                continue  # belongs to the month its arrival is in
            exp = out[s.employee]
            c = count_shift(s)
            exp.worked += c["worked"]
            exp.night += c["night"]
            exp.sunday += c["sunday"]
            exp.holiday += c["holiday"]
            exp.breaks += c["breaks"]
            exp.trip += c["trip"]
            exp.private += c["private"]
            exp.days_worked += 1
            exp.alerts += s.missing_departure
        for (emp, day), worked in per_day.items():
            if (day.year, day.month) != (self.year, self.month):
                continue
            if overtime_basis == "day":
                out[emp].overtime += max(0.0, worked - 8 * 3600)
                continue
            monday = day - timedelta(days=day.weekday())
            before = sum(per_day.get((emp, monday + timedelta(days=i)), 0.0)
                         for i in range(day.weekday()))
            out[emp].overtime += max(0.0, min(worked, before + worked - 40 * 3600))
        for emp, kind, first, last in self.absences:
            d = first
            while d <= last:
                if d.weekday() < 5 and d not in WORK_FREE and d.month == self.month:
                    out[emp].absences[kind] = out[emp].absences.get(kind, 0.0) + 8 * 3600
                d += timedelta(days=1)
        return out

    def week_worked(self, employee: str, monday: date) -> float:
        """Worked seconds of the shifts that begin in the week from ``monday``."""
        return sum(count_shift(s)["worked"] for s in self.shifts if s.employee == employee
                   and monday <= s.start.date() < monday + timedelta(days=7))

    def punches(self) -> list[tuple[str, datetime, str]]:
        """(employee, time, type) of every planned punch."""
        out = []
        for s in self.shifts:
            for minute, kind in s.marks:
                # in UTC: aware local arithmetic would ignore a DST change in between
                out.append((s.employee, s.start.astimezone(UTC) + timedelta(minutes=minute),
                            kind))
        return sorted(out, key=lambda p: (p[1], p[0]))


def _day_shift(rng: random.Random, emp: str, day: date) -> PlannedShift:
    start = datetime(day.year, day.month, day.day, 7, rng.randrange(0, 21), tzinfo=LJ)
    length = 510 + rng.randrange(-30, 91)  # 8 h 30 ± : some days with overtime
    marks = [(0, "arrival"), (300, "break_start"), (300 + rng.choice((30, 45)), "break_end")]
    if rng.random() < 0.2:
        marks += [(390, "trip_start"), (450, "trip_end")]
    if rng.random() < 0.15:
        marks += [(180, "private_start"), (200, "private_end")]
    return PlannedShift(emp, start, (*sorted(marks), (length, "departure")))


def _night_shift(emp: str, day: date, with_break: bool) -> PlannedShift:
    start = datetime(day.year, day.month, day.day, 22, 0, tzinfo=LJ)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), LJ).replace(hour=6)
    # 480 real minutes, or 540 across the DST end (subtracting in UTC: same-zone aware
    # datetimes subtract as wall times)
    length = int((end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() // 60)
    marks: list[tuple[int, str]] = [(0, "arrival")]
    if with_break:
        marks += [(180, "break_start"), (210, "break_end")]  # 01:00 local
    return PlannedShift(emp, start, (*marks, (length, "departure")))


def _weekend_shift(emp: str, day: date) -> PlannedShift:
    start = datetime(day.year, day.month, day.day, 8, 0, tzinfo=LJ)
    return PlannedShift(emp, start, ((0, "arrival"), (240, "break_start"),
                                     (270, "break_end"), (510, "departure")))


def make_plan(n_employees: int = 50, year: int = 2026, month: int = 10,
              seed: int = 6) -> MonthPlan:
    """Day workers (Mon-Fri), night workers (22-06, across midnight and the DST night)
    and weekend workers (Saturdays and Sundays, the work-free 31 October too), with
    annual leave, sick leave and a forgotten departure here and there. Shifts start two
    days before the month and run into the next one."""
    rng = random.Random(seed)
    first = date(year, month, 1) - timedelta(days=2)
    days = [first + timedelta(days=i) for i in range(36)]
    employees = [f"e{i:03d}" for i in range(n_employees)]
    shifts: list[PlannedShift] = []
    absences: list[tuple[str, str, date, date]] = []
    for i, emp in enumerate(employees):
        group = ("day", "day", "day", "night", "weekend")[i % 5]
        leave: set[date] = set()
        if group == "day" and i % 3 == 0:
            a, b = date(year, month, 12), date(year, month, 16)
            absences.append((emp, "annual_leave", a, b))
            leave |= {a + timedelta(days=k) for k in range((b - a).days + 1)}
        if group == "day" and i % 7 == 1:
            a, b = date(year, month, 20), date(year, month, 21)
            absences.append((emp, "sick_leave", a, b))
            leave |= {a, b}
        for day in days:
            if day in leave:
                continue
            if group == "day" and day.weekday() < 5 and day not in WORK_FREE:
                s = _day_shift(rng, emp, day)
                if i % 4 == 1 and day == date(year, month, 7):
                    s = PlannedShift(emp, s.start, s.marks[:-1], missing_departure=True)
                shifts.append(s)
            elif group == "night" and (day.toordinal() + i) % 3 != 0:
                shifts.append(_night_shift(emp, day, with_break=i % 2 == 0))
            elif group == "weekend" and day.weekday() >= 5:
                shifts.append(_weekend_shift(emp, day))
    # every night worker works the DST night and the night into 1 November
    for i, emp in enumerate(employees):
        if i % 5 == 3:
            for day in (date(2026, 10, 24), date(2026, 10, 31)):
                if not any(s.employee == emp and s.start.date() == day for s in shifts):
                    shifts.append(_night_shift(emp, day, with_break=True))
    devices = {emp: f"clock-{i % 3}" for i, emp in enumerate(employees)}
    return MonthPlan(year, month, employees, shifts, absences, devices)


# -- the time clocks' events ----------------------------------------------------------------

def chain_events(tenant: str, device: str, punches: list[tuple[str, datetime, str]],
                 key: Ed25519PrivateKey, head_every: int = 20) -> list[dict[str, Any]]:
    """Events as a time clock emits them: seq from 1, each punch sealed with the previous
    punch's hash, a signed head after every ``head_every`` punches and at the end."""
    out: list[dict[str, Any]] = []
    prev, seq, since_head = GENESIS, 0, 0

    def head(at: datetime, punch_seq: int) -> None:
        nonlocal seq
        seq += 1
        out.append({"id": str(uuid.uuid4()), "tenant": tenant, "device": device, "seq": seq,
                    "ts": ts(at), "type": HEAD_EVENT,
                    "data": {"punch_seq": punch_seq, "hash": prev, "sig": sign_head(key, prev)}})

    for employee, at, kind in punches:
        seq += 1
        data = {"employee": employee, "type": kind, "method": "card", "terminal": "t1",
                "prev_hash": prev}
        ev = {"id": str(uuid.uuid4()), "tenant": tenant, "device": device, "seq": seq,
              "ts": ts(at), "type": PUNCH_EVENT, "data": data}
        prev = punch_hash(prev, ev)
        data["hash"] = prev
        out.append(ev)
        since_head += 1
        if since_head == head_every:
            head(at, seq)
            since_head = 0
    if since_head:
        head(punches[-1][1], seq)
    return out


def plan_events(plan: MonthPlan, tenant: str, keys: dict[str, Ed25519PrivateKey]
                ) -> list[dict[str, Any]]:
    by_device: dict[str, list[tuple[str, datetime, str]]] = defaultdict(list)
    for p in plan.punches():
        by_device[plan.devices[p[0]]].append(p)
    out = []
    for device, ps in sorted(by_device.items()):
        out += chain_events(tenant, device, ps, keys[device])
    return out
