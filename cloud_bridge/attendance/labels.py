"""What the timesheets, forms and CSV call things, as English msgids translated where
they are shown (contracts/locale/sl/LC_MESSAGES/attendance.po)."""

from __future__ import annotations

from cloud_bridge.attendance.timesheet import AbsenceKind
from contracts.i18n import N_
from contracts.punch_types import PunchType

ABSENCE_NAMES: dict[str, str] = {
    AbsenceKind.ANNUAL_LEAVE: N_("annual leave"),
    AbsenceKind.SICK_LEAVE: N_("sick leave"),
    AbsenceKind.OTHER: N_("other absence"),
    AbsenceKind.HOLIDAY: N_("public holiday (paid)"),
}
ABSENCE_HEADINGS: dict[str, str] = {
    AbsenceKind.ANNUAL_LEAVE: N_("Annual leave"), AbsenceKind.SICK_LEAVE: N_("Sick leave"),
    AbsenceKind.OTHER: N_("Other absence"), AbsenceKind.HOLIDAY: N_("Public holiday"),
}
PUNCH_NAMES: dict[str, str] = {
    PunchType.ARRIVAL: N_("arrival"),
    PunchType.DEPARTURE: N_("departure"),
    PunchType.BREAK_START: N_("start of break"),
    PunchType.BREAK_END: N_("end of break"),
    PunchType.TRIP_START: N_("start of official trip"),
    PunchType.TRIP_END: N_("end of official trip"),
    PunchType.PRIVATE_START: N_("start of private leave"),
    PunchType.PRIVATE_END: N_("end of private leave"),
}
# the figures of timesheet.FIGURES by name: summary heading, day-table heading
FIGURE_NAMES: dict[str, str] = {
    "worked": N_("Hours worked"), "overtime": N_("Overtime"), "night": N_("Night"),
    "sunday": N_("Sunday"), "holiday": N_("Holiday"), "break": N_("Break"),
    "trip": N_("Official trip"), "private": N_("Private leave"),
}
WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))
CORRECTION_ACTIONS: dict[str, str] = {
    "add": N_("added punch"), "amend": N_("changed punch"), "void": N_("removed punch"),
}
