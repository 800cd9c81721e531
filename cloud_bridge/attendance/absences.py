"""Absences entered by an administrator (annual leave, sick leave, other).

Rows are never updated in place: a change withdraws the old row (who, when, why) and
adds its replacement; both steps are audited. Absences may share a working day only as
parts of it (each with its hours, together at most the daily hours); anything else that
overlaps is refused with the id of the absence already there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from cloud_bridge.attendance import audit_trail
from cloud_bridge.attendance.employer_rules import tenant_rules
from cloud_bridge.attendance.schema import absences
from cloud_bridge.attendance.timesheet import Absence, AbsenceKind, Rules, absence_days
from cloud_bridge.errors import Invalid
from cloud_bridge.errors import NotFound as BridgeNotFound

ENTERED_KINDS = (AbsenceKind.ANNUAL_LEAVE, AbsenceKind.SICK_LEAVE, AbsenceKind.OTHER)


class AbsenceError(Invalid):
    pass


class AbsenceNotFound(BridgeNotFound):
    pass


@dataclass(frozen=True, slots=True)
class AbsenceIn:
    employee: str
    kind: AbsenceKind
    first_day: date
    last_day: date
    author: str
    hours_per_day: float | None = None
    note: str = ""


def _check(a: AbsenceIn) -> None:
    if a.kind not in ENTERED_KINDS:
        raise AbsenceError(f"kind must be one of {', '.join(k.value for k in ENTERED_KINDS)}")
    if a.last_day < a.first_day:
        raise AbsenceError("last_day is before first_day")
    if (a.last_day - a.first_day).days > 366:
        raise AbsenceError("an absence spans at most a year; enter longer ones per year")
    if a.hours_per_day is not None and not 0 < a.hours_per_day <= 24:
        raise AbsenceError("hours_per_day must be in (0, 24]")
    if not a.author.strip():
        raise AbsenceError("an absence needs its author")


def _refuse_overlap(conn: Connection, tenant: str, a: AbsenceIn, rules: Rules) -> None:
    """Absences may share a working day only as parts of it: each must give its
    hours_per_day and together they may not exceed the daily hours. A second full-day
    absence on a day (annual leave entered twice) is refused, naming the first."""
    new = Absence(a.employee, a.kind, a.first_day, a.last_day, a.hours_per_day)
    new_days = absence_days(new, rules)
    if not new_days:
        return
    limit = rules.daily_hours * 3600.0
    if conn.dialect.name == "postgresql":
        # two administrators entering overlapping absences at once: the second waits and
        # then sees the first (SQLite's BEGIN IMMEDIATE already serialises writers)
        conn.execute(select(func.pg_advisory_xact_lock(
            func.hashtext(f"attendance-absence:{tenant}:{a.employee}"))))
    used: dict[date, float] = dict.fromkeys(new_days, 0.0)
    for old in current_absences(conn, tenant, min(new_days), max(new_days), a.employee):
        for day, secs in absence_days(old, rules).items():
            if day not in new_days:
                continue
            used[day] += secs
            partial = old.hours_per_day is not None and a.hours_per_day is not None
            if not partial or used[day] + new_days[day] > limit + 1e-6:
                raise AbsenceError(
                    f"employee {a.employee} already has absence {old.id} ({old.kind.value}) "
                    f"on {day.isoformat()}: absences may share a day only as parts of it "
                    f"(each with hours_per_day, together at most {rules.daily_hours:g} h); "
                    "replace or withdraw the other one first")


def create_absence(conn: Connection, tenant: str, a: AbsenceIn,
                   replaces: int | None = None, rules: Rules | None = None) -> int:
    _check(a)
    _refuse_overlap(conn, tenant, a, rules or tenant_rules(conn, tenant))
    now = audit_trail.now_ms()
    values = {"tenant": tenant, "employee": a.employee, "kind": a.kind.value,
              "first_day": a.first_day.isoformat(), "last_day": a.last_day.isoformat(),
              "hours_per_day": a.hours_per_day, "note": a.note, "created_by": a.author,
              "created_at": now, "replaces": replaces}
    key = conn.execute(insert(absences).values(**values)).inserted_primary_key
    assert key is not None  # a single-row INSERT always has one
    new_id = int(key[0])
    audit_trail.record(conn, tenant, a.author, "absence.create", f"employee {a.employee}",
                       {**values, "id": new_id}, now)
    return new_id


def withdraw_absence(conn: Connection, tenant: str, absence_id: int, author: str,
                     reason: str) -> None:
    if not author.strip() or not reason.strip():
        raise AbsenceError("withdrawing an absence needs its author and a reason")
    now = audit_trail.now_ms()
    done = conn.execute(update(absences).where(
        absences.c.tenant == tenant, absences.c.id == absence_id,
        absences.c.withdrawn_at.is_(None)).values(
        withdrawn_by=author, withdrawn_at=now, withdrawn_reason=reason)).rowcount
    if not done:
        raise AbsenceNotFound(f"no current absence {absence_id} in tenant {tenant!r}")
    audit_trail.record(conn, tenant, author, "absence.withdraw", f"absence {absence_id}",
                       {"id": absence_id, "reason": reason}, now)


def replace_absence(conn: Connection, tenant: str, absence_id: int, a: AbsenceIn,
                    reason: str) -> int:
    _check(a)
    withdraw_absence(conn, tenant, absence_id, a.author, reason)
    return create_absence(conn, tenant, a, replaces=absence_id)


def list_absences(conn: Connection, tenant: str, employee: str | None = None,
                  first: date | None = None, last: date | None = None,
                  include_withdrawn: bool = False) -> list[dict[str, Any]]:
    stmt = select(absences).where(absences.c.tenant == tenant)
    if employee:
        stmt = stmt.where(absences.c.employee == employee)
    if first:
        stmt = stmt.where(absences.c.last_day >= first.isoformat())
    if last:
        stmt = stmt.where(absences.c.first_day <= last.isoformat())
    if not include_withdrawn:
        stmt = stmt.where(absences.c.withdrawn_at.is_(None))
    return [dict(r) for r in conn.execute(stmt.order_by(absences.c.id)).mappings()]


def current_absences(conn: Connection, tenant: str, first: date, last: date,
                     employee: str | None = None) -> list[Absence]:
    return [Absence(r["employee"], AbsenceKind(r["kind"]), date.fromisoformat(r["first_day"]),
                    date.fromisoformat(r["last_day"]), r["hours_per_day"], r["id"])
            for r in list_absences(conn, tenant, employee, first=first, last=last)]
