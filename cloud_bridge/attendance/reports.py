"""Monthly working-time reports per employee and per company: CSV and printable HTML.

``month_report`` reads the corrected punches and the absences of a month and computes
every employee's timesheet; the renderers are plain functions of the result so that the
staff web pages can serve them too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Connection, select

from cloud_bridge.attendance import labels
from cloud_bridge.attendance.absences import current_absences
from cloud_bridge.attendance.alert_texts import alert_text
from cloud_bridge.attendance.employer_rules import tenant_rules
from cloud_bridge.attendance.shift_punches import shift_punches
from cloud_bridge.attendance.timesheet import (
    ABSENCE_COLUMNS,
    FIGURES,
    Absence,
    Day,
    Punch,
    Rules,
    Timesheet,
    Totals,
    month_bounds,
    report_days,
    timesheet,
    whole_minutes,
)
from cloud_bridge.db_schema import members
from cloud_bridge.web.page_templates import page_templates

_WEEKDAYS = ("pon", "tor", "sre", "čet", "pet", "sob", "ned")


@dataclass(frozen=True, slots=True)
class EmployeeMonth:
    employee: str
    name: str
    sheet: Timesheet


@dataclass(frozen=True, slots=True)
class MonthReport:
    tenant: str
    year: int
    month: int
    employees: tuple[EmployeeMonth, ...]
    totals: Totals
    generated_at: datetime
    rules: Rules

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def parse_month(text: str) -> tuple[int, int]:
    """'2026-11' -> (2026, 11)."""
    try:
        year, month = (int(p) for p in text.split("-"))
        date(year, month, 1)
    except ValueError:
        raise ValueError(f"month must look like 2026-11, not {text[:20]!r}") from None
    return year, month


def month_report(conn: Connection, tenant: str, year: int, month: int,
                 rules: Rules | None = None, as_of: datetime | None = None,
                 employee: str | None = None) -> MonthReport:
    """Every employee with a punch or an absence in the month (or just ``employee``).
    ``rules`` default to the tenant's own (``employer_rules``)."""
    rules = rules or tenant_rules(conn, tenant)
    as_of = as_of or datetime.now(UTC)
    start, end = month_bounds(year, month, rules)
    punches = shift_punches(conn, tenant, start, end,
                            [employee] if employee is not None else None)
    days = report_days(year, month)
    absences = current_absences(conn, tenant, days[0], days[-1])
    by_employee: dict[str, tuple[list[Punch], list[Absence]]] = {
        emp: (ps, []) for emp, ps in punches.items()}
    for a in absences:
        by_employee.setdefault(a.employee, ([], []))[1].append(a)
    if employee is not None:
        by_employee = {employee: by_employee.get(employee, ([], []))}
    names = {r.id: f"{r.first_name} {r.last_name}".strip() for r in conn.execute(
        select(members.c.id, members.c.first_name, members.c.last_name).where(
            members.c.tenant == tenant, members.c.id.in_(sorted(by_employee))))}
    rows: list[EmployeeMonth] = []
    for emp in sorted(by_employee):
        ps, abs_ = by_employee[emp]
        sheet = timesheet(emp, year, month, ps, abs_, rules, as_of)
        if employee is None and not any(d.start or d.absences or d.alerts
                                        for d in sheet.days):
            continue  # only punches of the neighbouring months fell in the window
        rows.append(EmployeeMonth(emp, names.get(emp, ""), sheet))
    total = Totals()
    for r in rows:
        total = total.plus(r.sheet.totals)
    return MonthReport(tenant, year, month, tuple(rows), total, as_of, rules)


def minutes(seconds: float) -> int:
    """Whole minutes of a reported figure (already rounded by the timesheet; rounding
    again half-up only guards against float noise)."""
    return int(whole_minutes(seconds)) // 60


def hours(seconds: float) -> str:
    """Hours and minutes, H:MM ("8:08"): every figure is whole minutes, so printed day
    rows add up exactly to the printed totals (decimal hours could not, 3 x 0:20)."""
    m = minutes(seconds)
    sign, m = ("-", -m) if m < 0 else ("", m)
    return f"{sign}{m // 60}:{m % 60:02d}"


def hours_or_blank(seconds: float) -> str:
    """Day rows leave zeros blank so that the figures that matter stand out in print."""
    return hours(seconds) if seconds else ""


def hm(at: datetime | None) -> str:
    return at.strftime("%H:%M") if at else ""


# -- CSV -----------------------------------------------------------------------------------

_TOTAL_HEAD = [*(f"{f.name}_h" for f in FIGURES), *(a.csv_name for a in ABSENCE_COLUMNS)]


def _cells(row: Day | Totals, absences: Mapping[str, float]) -> list[str]:
    """The figures, then the absences (seconds per kind), in the order of _TOTAL_HEAD."""
    return [*(hours(getattr(row, f.attr)) for f in FIGURES),
            *(hours(absences.get(a.kind.value, 0)) for a in ABSENCE_COLUMNS)]


def _total_cells(t: Totals) -> list[str]:
    return _cells(t, t.absences)


def company_csv(report: MonthReport) -> str:
    """One row per employee with the month's totals, then the company total."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["month", "employee", "name", "days_worked", *_TOTAL_HEAD, "alerts"])
    for e in report.employees:
        t = e.sheet.totals
        w.writerow([report.label, e.employee, e.name, t.days_worked, *_total_cells(t),
                    t.alerts])
    t = report.totals
    w.writerow([report.label, "TOTAL", "", t.days_worked, *_total_cells(t), t.alerts])
    return out.getvalue()


def _day_cells(d: Day) -> list[str]:
    return _cells(d, {k.value: s for k, s in d.absences})


def employee_csv(report: MonthReport) -> str:
    """One row per employee per calendar day (arrival, departure, every total)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["date", "weekday", "employee", "name", "work_free_day", "arrival",
                "departure", *_TOTAL_HEAD, "week_to_date_h", "month_to_date_h", "alerts"])
    for e in report.employees:
        for d in e.sheet.days:
            w.writerow([d.day.isoformat(), _WEEKDAYS[d.day.weekday()], e.employee, e.name,
                        d.holiday or "", hm(d.start), hm(d.end), *_day_cells(d),
                        hours(d.week_worked_s), hours(d.month_worked_s),
                        " | ".join(d.alerts)])
        w.writerow([report.label, "", e.employee, e.name, "", "", "TOTAL",
                    *_total_cells(e.sheet.totals), "", hours(e.sheet.totals.worked_s),
                    e.sheet.totals.alerts])
    return out.getvalue()


# -- HTML ----------------------------------------------------------------------------------

# the page templates of the bridge (translations, date filters), the attendance folder
# first; the staff pages (staff_pages.py) render from the same set
templates = page_templates(Path(__file__).parent / "templates")
_env = templates.env
_env.trim_blocks = True
_env.lstrip_blocks = True
_env.filters.update({"h": hours, "hz": hours_or_blank, "hm": hm, "alert": alert_text})
_env.globals.update(figures=FIGURES, absence_columns=ABSENCE_COLUMNS,
                    figure_names=labels.FIGURE_NAMES, absence_headings=labels.ABSENCE_HEADINGS,
                    absence_names=labels.ABSENCE_NAMES, punch_names=labels.PUNCH_NAMES,
                    weekdays=labels.WEEKDAYS, hours=hours, hours_or_blank=hours_or_blank)


def report_html(report: MonthReport, detail: bool = True,
                marks: Mapping[tuple[str, date], Sequence[object]] | None = None) -> str:
    """A printable page: the company summary, then (``detail``) one page per employee;
    ``marks`` (timesheet_marks.month_marks) flag corrected punches and absences."""
    return _env.get_template("attendance_report.html").render(
        r=report, detail=detail, rules=report.rules, marks=marks or {},
        month_label=None)
