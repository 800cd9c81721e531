"""Who is at work right now: the employees whose last punch (after corrections) is not a
departure and came within the rules' missing-departure time (docs/attendance.md; after
that the timesheet reports a missing departure instead)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, select

from cloud_bridge.attendance.corrections import corrected_punches
from cloud_bridge.attendance.employer_rules import tenant_rules
from cloud_bridge.attendance.timesheet import Punch
from cloud_bridge.db_schema import members
from contracts.punch_types import PunchType


@dataclass(frozen=True, slots=True)
class Present:
    employee: str
    name: str
    since: datetime  # the shift's arrival (or its first punch in the window)
    last: PunchType  # what they are doing: arrival, break_start, trip_start …
    last_at: datetime


def present_now(conn: Connection, tenant: str, now: datetime | None = None
                ) -> list[Present]:
    now = now or datetime.now(UTC)
    rules = tenant_rules(conn, tenant)
    window = corrected_punches(conn, tenant, now - rules.missing_departure_after,
                               now + timedelta(seconds=1))
    by_employee: dict[str, list[Punch]] = {}
    for p in window:
        by_employee.setdefault(p.employee, []).append(p)
    found: list[tuple[str, Punch, Punch]] = []
    for employee, punches in by_employee.items():
        last = punches[-1]
        if last.kind is PunchType.DEPARTURE:
            continue
        shift = punches
        for i in range(len(punches) - 1, -1, -1):
            if punches[i].kind is PunchType.DEPARTURE:
                shift = punches[i + 1:]
                break
        arrivals = [p for p in shift if p.kind is PunchType.ARRIVAL]
        found.append((employee, arrivals[-1] if arrivals else shift[0], last))
    names = {r.id: f"{r.first_name} {r.last_name}".strip() for r in conn.execute(
        select(members.c.id, members.c.first_name, members.c.last_name).where(
            members.c.tenant == tenant, members.c.id.in_(sorted(e for e, _, _ in found))))}
    return [Present(e, names.get(e, ""), first.at, last.kind, last.at)
            for e, first, last in sorted(found)]
