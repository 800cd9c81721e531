"""What the staff timesheet marks on a day: each correction of a punch (``*`` with what
was done, the reason and who) and each absence entered by staff (``†`` with its kind and
reason). A correction is marked on the day of the shift its punch ended up in; a removed
punch (void), which is in no shift any more, on the local day of the punch it removed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, select

from cloud_bridge.attendance.absences import list_absences
from cloud_bridge.attendance.corrections import list_corrections, parse_ts
from cloud_bridge.attendance.labels import ABSENCE_NAMES, CORRECTION_ACTIONS
from cloud_bridge.attendance.reports import MonthReport
from cloud_bridge.db_schema import events
from contracts.i18n import gettext as _
from contracts.punch_chain import PUNCH_EVENT

_CORRECTION_ID = re.compile(r"correction#(\d+)")
CORRECTED, ABSENT = "*", "†"


@dataclass(frozen=True, slots=True)
class Mark:
    symbol: str
    text: str


Marks = dict[tuple[str, date], list[Mark]]


def _correction_text(c: dict[str, Any]) -> str:
    return _("%(what)s: %(reason)s (%(author)s)") % {
        "what": _(CORRECTION_ACTIONS.get(c["action"], c["action"])),
        "reason": c["reason"], "author": c["author"]}


def _fallback_day(conn: Connection, tenant: str, c: dict[str, Any],
                  by_id: dict[int, dict[str, Any]], report: MonthReport) -> date | None:
    """The local day of a correction that is in no shift: its own time, else the time of
    the punch it refers to."""
    ts = c["ts"]
    if ts is None and c["ref_correction"] is not None:
        ts = (by_id.get(c["ref_correction"]) or {}).get("ts")
    if ts is None and c["ref_device"] is not None:
        ts = conn.execute(select(events.c.ts).where(
            events.c.tenant == tenant, events.c.device == c["ref_device"],
            events.c.seq == c["ref_seq"], events.c.type == PUNCH_EVENT)).scalar()
    return parse_ts(ts).astimezone(report.rules.tz).date() if ts else None


def _correction_marks(conn: Connection, report: MonthReport, marks: Marks) -> None:
    placed: dict[int, tuple[str, date]] = {}
    for e in report.employees:
        for d in e.sheet.days:
            for source in d.sources:
                for found in _CORRECTION_ID.findall(source):
                    placed.setdefault(int(found), (e.employee, d.day))
    shown = {e.employee for e in report.employees}
    days = {d.day for e in report.employees for d in e.sheet.days}
    rows = [c for c in list_corrections(conn, report.tenant) if c["employee"] in shown]
    by_id = {int(c["id"]): c for c in rows}
    for c in rows:
        where = placed.get(int(c["id"]))
        if where is None:
            day = _fallback_day(conn, report.tenant, c, by_id, report)
            if day is None or day not in days:
                continue
            where = (c["employee"], day)
        marks.setdefault(where, []).append(Mark(CORRECTED, _correction_text(c)))


def _absence_marks(conn: Connection, report: MonthReport, marks: Marks) -> None:
    for e in report.employees:
        days = e.sheet.days
        if not days:
            continue
        rows = list_absences(conn, report.tenant, e.employee, days[0].day, days[-1].day)
        for d in days:
            kinds = {k.value for k, _secs in d.absences}
            for a in rows:
                if a["kind"] in kinds and a["first_day"] <= d.day.isoformat() <= a["last_day"]:
                    text = _(ABSENCE_NAMES.get(a["kind"], a["kind"]))
                    if a["note"]:
                        text += f": {a['note']}"
                    marks.setdefault((e.employee, d.day), []).append(
                        Mark(ABSENT, f"{text} ({a['created_by']})"))


def month_marks(conn: Connection, report: MonthReport) -> Marks:
    marks: Marks = {}
    _correction_marks(conn, report, marks)
    _absence_marks(conn, report, marks)
    return marks
