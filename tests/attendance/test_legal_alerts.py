"""The legal alerts (ZDR-1 arts. 144, 154, 155, 156; a missing departure) on days built by
hand, and end to end: phone punches with too short a rest and no break make alerts that
reach the managers by e-mail, received by a real SMTP server (aiosmtpd), once."""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert

from cloud_bridge.attendance.alert_notices import notify_managers, tenant_alerts
from cloud_bridge.attendance.alert_sweep import AlertSweep, months_to_check, sweep
from cloud_bridge.attendance.employer_rules import set_tenant_rules, tenant_rules
from cloud_bridge.attendance.legal_alerts import Alert, legal_alerts
from cloud_bridge.attendance.phone_enrolment import create_enrolment, phone_user, sign_in
from cloud_bridge.attendance.phone_punch import PhonePunch, record_phone_punch
from cloud_bridge.attendance.schema import create_attendance_schema
from cloud_bridge.attendance.timeline import timeline_rows
from cloud_bridge.attendance.timesheet import LJUBLJANA, Day
from cloud_bridge.db_schema import make_engine, members, read_tx, write_tx
from cloud_bridge.notifications import Notifier, mailer_from_url
from cloud_bridge.web.auth import WebAuth
from cloud_bridge.web.auth_schema import web_metadata
from contracts.pin_hash import hash_pin
from contracts.punch_types import PunchType
from tests.smtp_server import SmtpServer

H = 3600.0


def _day(d: date, start_h: float | None, end_h: float | None, break_s: float = 1800,
         overtime_h: float = 0.0, alerts: tuple[str, ...] = ()) -> Day:
    base = datetime.combine(d, datetime.min.time(), LJUBLJANA)
    start = base + timedelta(hours=start_h) if start_h is not None else None
    end = base + timedelta(hours=end_h) if end_h is not None else None
    worked = (end_h - start_h) * H if start_h is not None and end_h is not None else 0.0
    return Day(d, None, start, end, worked, break_s if worked else 0.0,
               overtime_s=overtime_h * H, alerts=alerts)


def test_rules_on_hand_built_days() -> None:
    # Mon 2 Nov .. Sun 8 Nov 2026: 07-15 daily except Tuesday 14-23 then Wednesday 06-14
    # (7 h rest), Thursday without a break, Saturday a missing departure; Sunday off, so
    # the longest rest that week runs from Saturday's 15:00 to the week's end: 33 h
    monday = date(2026, 11, 2)
    days = [_day(monday, 7, 15), _day(monday + timedelta(1), 14, 23),
            _day(monday + timedelta(2), 6, 14), _day(monday + timedelta(3), 7, 15, 0),
            _day(monday + timedelta(4), 7, 15, overtime_h=9),
            _day(monday + timedelta(5), 7, 15, alerts=("missing departure (none within "
                                                       "16.0 h of the arrival)",)),
            _day(monday + timedelta(6), None, None)]
    found = {(a.code, a.day, round(a.hours, 1)) for a in legal_alerts("e1", days, 160 * H)}
    # 160 h of overtime before this month + 9 h = 169 h: under the yearly 170 h
    assert found == {("daily_rest", monday + timedelta(1), 7.0),
                     ("no_break", monday + timedelta(3), 8.0),
                     ("overtime_week", monday, 9.0),
                     ("missing_departure", monday + timedelta(5), 0.0)}
    # a week worked every day leaves at most the nights: 16 h
    busy = [_day(monday + timedelta(i), 7, 15) for i in range(7)]
    (weekly,) = [a for a in legal_alerts("e1", busy) if a.code == "weekly_rest"]
    assert weekly.day == monday and weekly.hours == 16.0
    # 21 h of overtime in the month (over 20) and 171 h in the year (over 170)
    heavy = [_day(monday + timedelta(i), 7, 15, overtime_h=3) for i in range(7)]
    codes = {a.code for a in legal_alerts("e1", heavy, 150 * H)}
    assert {"overtime_month", "overtime_year", "overtime_week"} <= codes


def _found(alerts: list[Alert]) -> set[tuple[str, date, float]]:
    return {(a.code, a.day, round(a.hours, 1)) for a in alerts}


def test_uneven_schedule_lowers_the_daily_rest_to_11_hours() -> None:
    # ZDR-1 art. 155(2). Mon 2 Nov 08-20, Tue 07:30-15:30 (11.5 h of rest after Monday),
    # Wed 14-22, Thu 08:30-16:30 (10.5 h after Wednesday), Fri 07-15
    monday = date(2026, 11, 2)
    days = [_day(monday, 8, 20), _day(monday + timedelta(1), 7.5, 15.5),
            _day(monday + timedelta(2), 14, 22), _day(monday + timedelta(3), 8.5, 16.5),
            _day(monday + timedelta(4), 7, 15)]
    assert _found(legal_alerts("e1", days)) == {("daily_rest", monday, 11.5),
                                                ("daily_rest", monday + timedelta(2), 10.5)}
    assert _found(legal_alerts("e1", days, uneven_schedule=True)) == {
        ("daily_rest_uneven", monday + timedelta(2), 10.5)}


def test_weekly_rest_is_averaged_over_14_days() -> None:
    # ZDR-1 art. 156(3). Week A (2-8 Nov) worked every day 07-15: its longest rest is a
    # night, 16 h. Week B1 (9-15 Nov) Mon-Fri 07-15: Fri 15:00 to the week's end, 57 h;
    # (16 + 57) / 2 = 36.5 h >= 24, so A is not alerted. Week B2 Mon-Sat 07-15 and Sunday
    # 20-23: its longest rest is Sat 15:00 - Sun 20:00, 29 h; (16 + 29) / 2 = 22.5 < 24
    a = date(2026, 11, 2)
    b = a + timedelta(7)
    week_a = [_day(a + timedelta(i), 7, 15) for i in range(7)]
    b1 = [_day(b + timedelta(i), 7, 15) for i in range(5)] + \
        [_day(b + timedelta(i), None, None) for i in (5, 6)]
    b2 = [_day(b + timedelta(i), 7, 15) for i in range(6)] + [_day(b + timedelta(6), 20, 23)]
    weekly = {(x.day, round(x.hours, 1)) for x in legal_alerts("e1", week_a + b1)
              if x.code == "weekly_rest"}
    assert weekly == set()
    weekly = {(x.day, round(x.hours, 1)) for x in legal_alerts("e1", week_a + b2)
              if x.code == "weekly_rest"}
    assert weekly == {(a, 16.0)}
    # the week after compensates too: B1 then A
    later = [_day(b + timedelta(7 + i), 7, 15) for i in range(7)]
    assert [x for x in legal_alerts("e1", b1 + later) if x.code == "weekly_rest"] == []


def test_the_month_before_completes_the_week_and_rest_crossing_into_it() -> None:
    # December 2026 starts on a Tuesday. 23-29 Nov and 1-13 Dec worked 07-15 every day,
    # 30 Nov 14-23: 8 h of rest before 1 Dec 07:00 (under 12). The week of 30 Nov - 6 Dec
    # (longest rest 16 h, a night) is whole only with November's days; with the week
    # before (16 h) or after (16 h) it averages 16 h: alerted, and so is 7-13 Dec.
    nov30 = date(2026, 11, 30)
    before = [_day(nov30 - timedelta(7 - i), 7, 15) for i in range(7)] + [_day(nov30, 14, 23)]
    december = [_day(date(2026, 12, 1) + timedelta(i), 7, 15) for i in range(13)]
    found = _found(legal_alerts("e1", december, days_before=before))
    assert found == {("daily_rest", nov30, 8.0), ("weekly_rest", nov30, 16.0),
                     ("weekly_rest", date(2026, 12, 7), 16.0)}
    # without the month before, only the week wholly in December is judged
    assert _found(legal_alerts("e1", december)) == {("weekly_rest", date(2026, 12, 7), 16.0)}


def test_uneven_schedule_is_an_employer_rule(engine: Engine, tenant: str) -> None:
    with write_tx(engine) as conn:
        assert tenant_rules(conn, tenant).uneven_schedule is False
        set_tenant_rules(conn, tenant, "week", 8, 40, "boss", uneven_schedule=True)
        assert tenant_rules(conn, tenant).uneven_schedule is True


def test_a_rules_table_made_before_the_column_gets_it(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    with eng.begin() as conn:  # the table as released before ZDR-1 art. 155(2) was kept
        conn.exec_driver_sql(
            "CREATE TABLE attendance_employer_rules (id INTEGER PRIMARY KEY, tenant "
            "VARCHAR(64) NOT NULL, overtime_basis VARCHAR(8) NOT NULL, daily_hours FLOAT "
            "NOT NULL, weekly_hours FLOAT NOT NULL, set_by VARCHAR(120) NOT NULL, "
            "set_at BIGINT NOT NULL)")
        conn.exec_driver_sql("INSERT INTO attendance_employer_rules VALUES "
                             "(1, 't1', 'day', 8, 40, 'boss', 0)")
    create_attendance_schema(eng)
    with write_tx(eng) as conn:
        rules = tenant_rules(conn, "t1")
    eng.dispose()
    assert rules.overtime_basis == "day" and rules.uneven_schedule is False


def _short_rest_and_no_break(engine: Engine, tenant: str) -> None:
    """Ana Novak (e1) by phone, Tue 10 Nov 2026 14:00-23:00 without a break and Wed 11 Nov
    06:00-14:00 with one: 7 h of rest (under 12) and a shift without a break; a manager
    (administrator) and an accountant as staff users."""
    now = int(time.time())
    with write_tx(engine) as conn:
        conn.execute(insert(members).values(tenant=tenant, id="e1", first_name="Ana",
                                            last_name="Novak", blocked=False,
                                            pin_hash=hash_pin("4821"), created_at=now,
                                            updated_at=now))
        token = create_enrolment(conn, tenant, "e1", "boss")
        session, _e = sign_in(conn, tenant, token, "4821")
    with engine.begin() as conn:  # the staff users' tables, as mount_web makes them
        web_metadata.create_all(conn)
    auth = WebAuth(engine)
    auth.create_user(tenant, f"vodja@{tenant}.si", "a long test password", "administrator")
    auth.create_user(tenant, f"racunovodja@{tenant}.si", "a long test password",
                     "accountant")
    # Tue 10 Nov 2026 14:00-23:00 without a break, Wed 11 Nov 06:00-14:00 with one:
    # 7 h of rest (under 12) and a shift without a break
    day = datetime(2026, 11, 10, tzinfo=LJUBLJANA)
    plan = [(PunchType.ARRIVAL, day.replace(hour=14)), (PunchType.DEPARTURE, day.replace(hour=23)),
            (PunchType.ARRIVAL, day.replace(day=11, hour=6)),
            (PunchType.BREAK_START, day.replace(day=11, hour=10)),
            (PunchType.BREAK_END, day.replace(day=11, hour=10, minute=30)),
            (PunchType.DEPARTURE, day.replace(day=11, hour=14))]
    for kind, at in plan:
        with write_tx(engine) as conn:
            record_phone_punch(conn, phone_user(conn, session),
                               PhonePunch(str(uuid.uuid4()), kind, at, at, None), at)


def test_alert_emails_reach_the_manager_once(engine: Engine, tenant: str,
                                             smtp_server: SmtpServer) -> None:
    _short_rest_and_no_break(engine, tenant)
    notifier = Notifier(engine, mailer_from_url(smtp_server.url("edc@edge.test")), None)
    with write_tx(engine) as conn:
        found = tenant_alerts(conn, tenant, 2026, 11)
        assert sorted(a.code for _n, a in found) == ["daily_rest", "no_break"]
        assert notify_managers(conn, notifier, tenant, found) == 2
    assert notifier.deliver_due() == 2
    received = smtp_server.wait_for(2)
    assert {m["To"] for m in received} == {f"vodja@{tenant}.si"}  # not the accountant
    bodies = sorted(m.get_content() for m in received)
    assert "10. 11. 2026" in bodies[0] + bodies[1]
    assert any("ZDR-1" in b and "155" in b for b in bodies)
    assert any("154" in b for b in bodies)
    with read_tx(engine) as conn:  # the week's timeline: six phone punches, two alerts
        (row,) = timeline_rows(conn, tenant, datetime(2026, 11, 9, tzinfo=LJUBLJANA), 7,
                               None)
    assert sorted(m.source for m in row.marks) == ["alert"] * 2 + ["phone"] * 6
    assert [b.kind for b in row.bars] == ["work", "work"]
    with write_tx(engine) as conn:  # found again by the next check: not mailed again
        assert notify_managers(conn, notifier, tenant, tenant_alerts(conn, tenant, 2026, 11)) == 0


def test_the_hourly_sweep_mails_new_alerts_without_anyone_pressing(
        engine: Engine, tenant: str, smtp_server: SmtpServer) -> None:
    _short_rest_and_no_break(engine, tenant)
    notifier = Notifier(engine, mailer_from_url(smtp_server.url("edc@edge.test")), None)
    assert months_to_check(date(2026, 12, 2)) == [(2026, 11), (2026, 12)]
    assert months_to_check(date(2026, 1, 1)) == [(2025, 12), (2026, 1)]
    assert months_to_check(date(2026, 12, 4)) == [(2026, 12)]
    # on 4 December the sweep looks at December only: November's alerts are not new there
    assert sweep(engine, notifier, date(2026, 12, 4)) == 0
    sweeper = AlertSweep(engine, notifier, interval_s=3600, today=lambda: date(2026, 12, 2))
    notifier.start(interval_s=0.05)
    sweeper.start()
    try:
        received = smtp_server.wait_for(2)
    finally:
        sweeper.stop()
        notifier.stop()
    assert {m["To"] for m in received} == {f"vodja@{tenant}.si"}
    assert all(m["Subject"].startswith("Opozorilo") for m in received), \
        [m["Subject"] for m in received]  # Slovenian by default
    assert sweep(engine, notifier, date(2026, 12, 2)) == 0  # the next pass: nothing new
