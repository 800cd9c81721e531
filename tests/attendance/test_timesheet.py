"""Timesheet rules on hand-computed cases: DST nights, midnight, breaks, trips, private
leave, missing departures, holidays and absences."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from cloud_bridge.attendance.timesheet import (
    LJUBLJANA,
    Absence,
    AbsenceKind,
    Punch,
    Rules,
    shifts,
    timesheet,
)
from contracts.punch_types import PunchType as P

H = 3600.0
LATER = datetime(2027, 1, 1, tzinfo=UTC)
DAILY = Rules(overtime_basis="day")  # overtime over 8 h a day, an employer's choice


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=LJUBLJANA)


def punches(*items: tuple[datetime, P]) -> list[Punch]:
    return [Punch("e1", at, kind, f"d#{i}") for i, (at, kind) in enumerate(items, 1)]


def test_spring_forward_night_shift_is_seven_real_hours() -> None:
    # Sat 28 Mar 22:00 CET -> Sun 29 Mar 06:00 CEST: the clock skips 02:00-03:00
    (s,) = shifts("e1", punches((local(2026, 3, 28, 22), P.ARRIVAL),
                                (local(2026, 3, 29, 6), P.DEPARTURE)), Rules(), LATER)
    assert s.day == date(2026, 3, 28)
    assert s.worked_s == 7 * H
    assert s.night_s == 6 * H  # 23:00 CET .. 06:00 CEST
    assert s.sunday_s == 5 * H  # from Sunday 00:00
    assert s.holiday_s == 0


def test_fall_back_night_shift_is_nine_real_hours_with_overtime() -> None:
    sheet = timesheet("e1", 2026, 10, punches((local(2026, 10, 24, 22), P.ARRIVAL),
                                              (local(2026, 10, 25, 6), P.DEPARTURE)),
                      [], DAILY, LATER)
    d = sheet.days[23]
    assert d.day == date(2026, 10, 24) and d.start == local(2026, 10, 24, 22)
    assert (d.worked_s, d.night_s, d.sunday_s, d.overtime_s) == (9 * H, 8 * H, 7 * H, 1 * H)
    assert sheet.days[24].worked_s == 0  # the Sunday row has no shift of its own


def test_a_whole_dst_sunday_has_23_hours() -> None:
    (s,) = shifts("e1", punches((local(2026, 3, 29, 0), P.ARRIVAL),
                                (local(2026, 3, 30, 0), P.DEPARTURE)), Rules(), LATER)
    assert s.worked_s == s.sunday_s == 23 * H
    assert s.night_s == 6 * H  # 00-06 is 5 real hours, 23-24 one more


def test_break_trip_and_private_leave() -> None:
    day = (2026, 11, 3)  # a Tuesday
    sheet = timesheet("e1", 2026, 11, punches(
        (local(*day, 7), P.ARRIVAL), (local(*day, 11), P.BREAK_START),
        (local(*day, 11, 45), P.BREAK_END), (local(*day, 13), P.TRIP_START),
        (local(*day, 14), P.TRIP_END), (local(*day, 15), P.PRIVATE_START),
        (local(*day, 15, 30), P.PRIVATE_END), (local(*day, 16), P.DEPARTURE)),
        [], DAILY, LATER)
    d = sheet.days[2]
    # work 4 + 1.25 + 1 + 0.5, trip 1, the paid half hour of a 45-minute break
    assert d.worked_s == 8.25 * H and d.overtime_s == 0.25 * H
    assert (d.break_s, d.trip_s, d.private_s) == (0.75 * H, 1 * H, 0.5 * H)
    assert d.night_s == d.sunday_s == d.holiday_s == 0 and d.alerts == ()


def test_missing_departures_are_flagged_not_counted() -> None:
    ps = punches((local(2026, 11, 4, 7), P.ARRIVAL), (local(2026, 11, 5, 7), P.ARRIVAL),
                 (local(2026, 11, 5, 15), P.DEPARTURE), (local(2026, 11, 6, 7), P.ARRIVAL))
    soon = local(2026, 11, 6, 12).astimezone(UTC)
    sheet = timesheet("e1", 2026, 11, ps, [], Rules(), soon)
    assert "missing departure" in sheet.days[3].alerts[0] and sheet.days[3].worked_s == 0
    assert sheet.days[4].worked_s == 8 * H
    assert sheet.days[5].alerts == ()  # still in progress
    later = timesheet("e1", 2026, 11, ps, [], Rules(), soon + timedelta(hours=12))
    assert "none within 16 h" in later.days[5].alerts[0]
    assert later.totals.alerts == 2 and later.totals.worked_s == 8 * H
    stray = timesheet("e1", 2026, 11, punches((local(2026, 11, 9, 16), P.DEPARTURE)), [],
                      Rules(), LATER)
    assert stray.days[8].alerts == ("departure without an arrival: ignored",)


def test_holidays_sundays_absences() -> None:
    ps = punches((local(2026, 11, 1, 8), P.ARRIVAL), (local(2026, 11, 1, 16), P.DEPARTURE))
    sheet = timesheet("e1", 2026, 12, [], [
        Absence("e1", AbsenceKind.ANNUAL_LEAVE, date(2026, 12, 21), date(2026, 12, 31))],
        Rules(), LATER)
    kinds = {d.day: d.absences for d in sheet.days}
    assert kinds[date(2026, 12, 25)] == ((AbsenceKind.HOLIDAY, 8 * H),)  # Friday, work-free
    assert kinds[date(2026, 12, 26)] == ()  # Saturday
    # 21-24, 28-31 December: 8 working days of leave
    assert sheet.totals.absences == {"annual_leave": 64 * H, "holiday": 8 * H}
    nov = timesheet("e1", 2026, 11, ps, [], Rules(), LATER)
    d = nov.days[0]  # 1 November 2026 is a Sunday and a work-free day
    assert d.holiday == "dan spomina na mrtve"
    assert (d.worked_s, d.sunday_s, d.holiday_s, d.night_s) == (8 * H, 8 * H, 8 * H, 0)
