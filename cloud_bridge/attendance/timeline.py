"""Day and week timelines for staff (``/t/{tenant}/timeline?day=&span=day|week&
employee=``): one row per employee (the team, or one person), the punches as marks
coloured by source (terminal, phone, correction), the time at work as bars from each
arrival to the next departure, absences as bands and the legal alerts (legal_alerts.py;
the yearly overtime limit is left to the alerts page) as red marks on their day.
Server-rendered SVG (no script): geometry here, drawing in templates/timeline.html."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from cloud_bridge.attendance.absences import list_absences
from cloud_bridge.attendance.alert_notices import alert_text, tenant_alerts
from cloud_bridge.attendance.corrections import corrected_punches
from cloud_bridge.attendance.labels import PUNCH_NAMES
from cloud_bridge.attendance.legal_alerts import Alert
from cloud_bridge.attendance.staff_pages import Viewer, render
from cloud_bridge.attendance.timesheet import LJUBLJANA
from cloud_bridge.db_schema import read_tx
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.guards import route_meta
from contracts.i18n import gettext as _
from contracts.punch_types import PunchType

router = APIRouter()
WIDTH, ROW, LABEL = 960.0, 34.0, 140.0


@dataclass(frozen=True, slots=True)
class Mark:
    x: float
    source: str  # terminal | phone | correction | alert
    title: str


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    w: float
    kind: str  # work | absence
    title: str


@dataclass(frozen=True, slots=True)
class Row:
    employee: str
    marks: tuple[Mark, ...]
    bars: tuple[Bar, ...]


def _source(src: str) -> str:
    if "correction#" in src:
        return "correction"
    return "phone" if src.startswith("phone.") else "terminal"


def timeline_rows(conn: Connection, tenant: str, start: datetime, days: int,
                  employee: str | None) -> list[Row]:
    end = start + timedelta(days=days)
    span = (end - start).total_seconds()

    def x(at: datetime) -> float:
        return LABEL + (WIDTH - LABEL) * max(0.0, min(1.0, (at - start).total_seconds() / span))

    punches = corrected_punches(conn, tenant, start, end,
                                [employee] if employee else None)
    by: dict[str, list[Mark]] = {}
    bars: dict[str, list[Bar]] = {}
    open_at: dict[str, datetime] = {}
    for p in punches:
        local = p.at.astimezone(LJUBLJANA)
        by.setdefault(p.employee, []).append(Mark(x(p.at), _source(p.source), (
            f"{local:%d. %m. %H:%M} {_(PUNCH_NAMES[p.kind])} ({p.source})")))
        if p.kind is PunchType.ARRIVAL:
            open_at[p.employee] = p.at
        elif p.kind is PunchType.DEPARTURE and p.employee in open_at:
            began = open_at.pop(p.employee)
            bars.setdefault(p.employee, []).append(Bar(x(began), x(p.at) - x(began), "work",
                                                       ""))
    for a in list_absences(conn, tenant, employee, start.date(),
                           (end - timedelta(days=1)).date()):
        first = datetime.combine(date.fromisoformat(a["first_day"]), datetime.min.time(),
                                 LJUBLJANA)
        last = datetime.combine(date.fromisoformat(a["last_day"]), datetime.min.time(),
                                LJUBLJANA) + timedelta(days=1)
        bars.setdefault(a["employee"], []).append(Bar(
            x(first), x(last) - x(first), "absence", a["kind"]))
        by.setdefault(a["employee"], [])
    for alert in _alerts(conn, tenant, start, end, employee):
        at = datetime.combine(alert.day, datetime.min.time(), LJUBLJANA) + timedelta(hours=12)
        if start <= at < end:
            by.setdefault(alert.employee, []).append(Mark(x(at), "alert", alert_text(alert)))
    return [Row(e, tuple(by[e]), tuple(bars.get(e, ()))) for e in sorted(by)]


def _alerts(conn: Connection, tenant: str, start: datetime, end: datetime,
            employee: str | None) -> list[Alert]:
    """The legal alerts of the months the window touches."""
    months = sorted({(start.year, start.month),
                     ((end - timedelta(days=1)).year, (end - timedelta(days=1)).month)})
    return [a for year, month in months
            for _name, a in tenant_alerts(conn, tenant, year, month, employee)]


@router.get("/timeline", **route_meta("attendance.view"))
def timeline_page(request: Request, staff: Viewer, ctx: Ctx,
                  day: Annotated[date | None, Query()] = None,
                  span: Annotated[str, Query(pattern="^(day|week)$")] = "week",
                  employee: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    chosen = day or datetime.now(LJUBLJANA).date()
    if span == "week":
        chosen -= timedelta(days=chosen.weekday())
    days = 7 if span == "week" else 1
    start = datetime.combine(chosen, datetime.min.time(), LJUBLJANA)
    with read_tx(ctx.engine) as conn:
        rows = timeline_rows(conn, staff.tenant, start, days, employee or None)
    ticks = [(LABEL + (WIDTH - LABEL) * i / (days * (1 if days == 7 else 6)),
              (start + timedelta(days=i) if days == 7 else start + timedelta(hours=4 * i)))
             for i in range(days if days == 7 else 6)]
    return render(request, "timeline.html", staff, rows=rows, ticks=ticks, span=span,
                  day=chosen, width=WIDTH, row_h=ROW, label_w=LABEL,
                  height=ROW * max(1, len(rows)) + 24, employee=employee or "",
                  prev=chosen - timedelta(days=days), next=chosen + timedelta(days=days))
