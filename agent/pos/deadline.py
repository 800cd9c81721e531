"""The legal deadline for subsequent submission: two working days after issue.

A receipt issued without EOR (FURS unreachable) must be sent again, marked
SubsequentSubmit, within two working days (ZDavPR; spec v3.2 R_3.13 defines the mark).
Working days are Monday-Friday except Slovenian public holidays that are work-free days
(Zakon o praznikih in dela prostih dnevih). The deadline is the end (24:00 Ljubljana time)
of the second working day after the issue day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from contracts.work_free_days import is_holiday

LJUBLJANA = ZoneInfo("Europe/Ljubljana")


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and not is_holiday(day)


def subsequent_deadline(issued_at: datetime, working_days: int = 2) -> datetime:
    day = issued_at.astimezone(LJUBLJANA).date()
    counted = 0
    while counted < working_days:
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return datetime.combine(day + timedelta(days=1), time(0, 0), LJUBLJANA)
