"""The month's timesheets as a CSV file for a spreadsheet: one row per employee and a
total row, headings in the reader's language, ``;`` between fields and a decimal comma
(what Slovenian Excel expects), hours as decimal numbers so the columns can be summed,
UTF-8 with a byte order mark so Excel reads č, š and ž. (The JSON API's CSV keeps its
machine column names: docs/attendance.md.)"""

from __future__ import annotations

import csv
import io

from cloud_bridge.attendance.labels import ABSENCE_HEADINGS, FIGURE_NAMES
from cloud_bridge.attendance.reports import MonthReport, minutes
from cloud_bridge.attendance.timesheet import ABSENCE_COLUMNS, FIGURES, Totals
from contracts.i18n import gettext as _

BOM = "\ufeff"


def decimal_hours(seconds: float) -> str:
    """Whole minutes as hours with two decimals and a decimal comma: 8:30 -> "8,50"."""
    return f"{minutes(seconds) / 60:.2f}".replace(".", ",")


def _cells(t: Totals) -> list[str]:
    return [*(decimal_hours(getattr(t, f.attr)) for f in FIGURES),
            *(decimal_hours(t.absences.get(a.kind.value, 0)) for a in ABSENCE_COLUMNS)]


def staff_csv(report: MonthReport, month_label: str) -> str:
    out = io.StringIO()
    w = csv.writer(out, delimiter=";", lineterminator="\r\n")
    w.writerow([_("Month"), _("Employee number"), _("Full name"), _("Days worked"),
                *(_("%(figure)s (h)") % {"figure": _(FIGURE_NAMES[f.name])} for f in FIGURES),
                *(_("%(figure)s (h)") % {"figure": _(ABSENCE_HEADINGS[a.kind.value])}
                  for a in ABSENCE_COLUMNS),
                _("Alerts")])
    for e in report.employees:
        t = e.sheet.totals
        w.writerow([month_label, e.employee, e.name, t.days_worked, *_cells(t), t.alerts])
    t = report.totals
    w.writerow([month_label, _("Total"), "", t.days_worked, *_cells(t), t.alerts])
    return BOM + out.getvalue()
