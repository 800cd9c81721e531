"""Issue 15: the timesheet's time figures are written out once (timesheet.FIGURES and
ABSENCE_COLUMNS); the totals, the CSV, the JSON and the printed HTML all follow it."""

from __future__ import annotations

import csv
import io
from dataclasses import fields
from datetime import UTC, date, datetime
from typing import Any

from cloud_bridge.attendance.api import totals_json
from cloud_bridge.attendance.reports import (
    EmployeeMonth,
    MonthReport,
    company_csv,
    employee_csv,
    report_html,
)
from cloud_bridge.attendance.timesheet import (
    ABSENCE_COLUMNS,
    FIGURES,
    AbsenceKind,
    Day,
    Rules,
    Timesheet,
    Totals,
)

RUNNING = {"week_worked_s", "month_worked_s"}  # running totals, not summed


def test_figures_name_every_time_figure_of_a_day_and_of_the_totals() -> None:
    names = {f.attr for f in FIGURES}
    assert names == {f.name for f in fields(Totals) if f.name.endswith("_s")}
    assert names == {f.name for f in fields(Day) if f.name.endswith("_s")} - RUNNING
    assert {a.kind for a in ABSENCE_COLUMNS} == set(AbsenceKind)


def _report() -> MonthReport:
    # every figure a different number of minutes, so a swapped column shows
    values: dict[str, Any] = {f.attr: 60.0 * (i + 1) for i, f in enumerate(FIGURES)}
    day = Day(date(2026, 11, 2), None, absences=((AbsenceKind.SICK_LEAVE, 600.0),),
              **values)
    totals = Totals.of([day])
    sheet = Timesheet("e1", 2026, 11, (day,), totals)
    return MonthReport("t1", 2026, 11, (EmployeeMonth("e1", "Ana", sheet),), totals,
                       datetime(2026, 12, 1, tzinfo=UTC), Rules())


def test_csv_json_and_html_print_the_figures_in_one_order() -> None:
    report = _report()
    expected = [f"0:{i + 1:02d}" for i in range(len(FIGURES))]
    company = list(csv.DictReader(io.StringIO(company_csv(report))))
    assert [company[0][f"{f.name}_h"] for f in FIGURES] == expected
    assert company[0]["sick_leave_h"] == "0:10" and company[1]["employee"] == "TOTAL"
    days = list(csv.DictReader(io.StringIO(employee_csv(report))))
    assert [days[0][f"{f.name}_h"] for f in FIGURES] == expected
    js = totals_json(report.totals)
    assert [js[f"{f.name}_min"] for f in FIGURES] == list(range(1, len(FIGURES) + 1))
    assert js["absences_min"] == {"sick_leave": 10}
    html = report_html(report)
    headings = [f"<th scope=\"col\">{f.heading}</th>" for f in FIGURES]  # Slovenian by default
    assert "".join(headings) in html
    assert "\n".join(f"<td>{v}</td>" for v in expected) in html
