"""Every punch of the shifts that begin in a period, read by shift, not by a fixed window.

A shift belongs to the period of its arrival (docs/attendance.md, "Month edges"). A first
read takes the period with a margin of a normal shift on each side; for each employee
whose first or last shift is still cut at an edge (``timesheet.unsettled_edges``) the
read widens, for those employees only, until the shift's arrival and its closing
departure (or the next arrival) are in, or until there is nothing older or newer stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select

from cloud_bridge.attendance.corrections import corrected_punches, parse_ts
from cloud_bridge.attendance.schema import corrections
from cloud_bridge.attendance.timesheet import Punch, unsettled_edges
from cloud_bridge.db_schema import events
from contracts.punch_chain import PUNCH_EVENT

FIRST_MARGIN = timedelta(hours=17)  # longer than a normal shift and its 16 h alert
_GROWTH = 4


def _stored_span(conn: Connection, tenant: str) -> tuple[datetime, datetime] | None:
    """The oldest and newest punch time stored for the tenant, originals or corrected."""
    lows: list[str] = []
    highs: list[str] = []
    for stmt in (select(func.min(events.c.ts), func.max(events.c.ts)).where(
                     events.c.tenant == tenant, events.c.type == PUNCH_EVENT),
                 select(func.min(corrections.c.ts), func.max(corrections.c.ts)).where(
                     corrections.c.tenant == tenant)):
        lo, hi = conn.execute(stmt).one()
        if lo is not None:
            lows.append(lo)
            highs.append(hi)
    if not lows:
        return None
    return parse_ts(min(lows)), parse_ts(max(highs))


def _group(punches: list[Punch]) -> dict[str, list[Punch]]:
    out: dict[str, list[Punch]] = {}
    for p in punches:
        out.setdefault(p.employee, []).append(p)
    return out


def shift_punches(conn: Connection, tenant: str, start: datetime, end: datetime,
                  employees: Iterable[str] | None = None) -> dict[str, list[Punch]]:
    """Per employee, the corrected punches (by time) that make the shifts beginning in
    [start, end) complete, plus those of a shift from before ``start`` that reach into
    it (so that they are recognised as its and not taken for strays)."""
    margin = FIRST_MARGIN
    by_employee = _group(corrected_punches(conn, tenant, start - margin, end + margin,
                                           employees))
    span: tuple[datetime, datetime] | None = None
    while True:
        pending = sorted(e for e, ps in by_employee.items()
                         if any(unsettled_edges(ps, start, end)))
        if not pending:
            return by_employee
        if span is None:
            span = _stored_span(conn, tenant)
            if span is None:
                return by_employee
        if start - margin <= span[0] and end + margin > span[1]:
            return by_employee  # everything stored has been read: the cut is real
        margin *= _GROWTH
        wider = _group(corrected_punches(conn, tenant, start - margin, end + margin,
                                         pending))
        for emp in pending:
            by_employee[emp] = wider.get(emp, [])
