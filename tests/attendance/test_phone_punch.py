"""Phone punches on SQLite and PostgreSQL: enrolment with the link and PIN, revocation,
the punch chain shared with the terminals' verifier, the clock check, a second sync of
the same punch, geofences under each policy, location retention, and the timesheet of a
day made of a terminal arrival and phone punches (hours counted by hand)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, insert, select, update

from cloud_bridge.attendance.absence_requests import (
    Document,
    RequestIn,
    approve_request,
    list_requests,
    refuse_request,
    request_document,
    submit_request,
)
from cloud_bridge.attendance.chain_audit import audit_chain
from cloud_bridge.attendance.decision_notice import notify_decision
from cloud_bridge.attendance.geofence import Fence, Policy, distance_m, inside, parse_polygon
from cloud_bridge.attendance.phone_enrolment import (
    create_enrolment,
    phone_user,
    revoke_enrolment,
    sign_in,
)
from cloud_bridge.attendance.phone_punch import (
    PhonePunch,
    Position,
    PunchRefused,
    erase_expired_everywhere,
    phone_device,
    record_phone_punch,
    set_geofence,
)
from cloud_bridge.attendance.reports import month_report
from cloud_bridge.attendance.schema import audit, punch_locations
from cloud_bridge.attendance.timesheet import LJUBLJANA, AbsenceKind
from cloud_bridge.db_schema import members, read_tx, write_tx
from cloud_bridge.errors import Invalid, Unauthorized
from cloud_bridge.notifications import Notifier, mailer_from_url
from contracts.pin_hash import hash_pin
from contracts.punch_types import PunchType
from tests.attendance.conftest import ingest
from tests.attendance.punch_plan import chain_events
from tests.smtp_server import SmtpServer

# the office: a 100 m circle in Ljubljana; OUTSIDE is about 1.1 km east
OFFICE = (46.0569, 14.5058)
NEAR = Position(46.0571, 14.5060, 10.0)
OUTSIDE = Position(46.0569, 14.5200, 10.0)
PIN = "4821"


def _employee(engine: Engine, tenant: str, employee: str = "e1") -> None:
    now = int(time.time())
    with write_tx(engine) as conn:
        conn.execute(insert(members).values(tenant=tenant, id=employee, first_name="Ana",
                                            last_name="Novak", blocked=False,
                                            pin_hash=hash_pin(PIN), created_at=now,
                                            updated_at=now))


def _enrol(engine: Engine, tenant: str, site: str | None = None,
           policy: Policy | None = None) -> str:
    with write_tx(engine) as conn:
        token = create_enrolment(conn, tenant, "e1", "boss@x.si", site, policy)
        return sign_in(conn, tenant, token, PIN)[0]


def _punch(engine: Engine, session: str, kind: PunchType, at: datetime,
           pos: Position | None = None, skew: timedelta = timedelta(0),
           client_id: str | None = None) -> dict[str, object]:
    """A punch made at ``at`` and sent at once by a phone whose clock is ``skew`` off."""
    punch = PhonePunch(client_id or str(uuid.uuid4()), kind, at + skew, at + skew, pos)
    with write_tx(engine) as conn:
        return record_phone_punch(conn, phone_user(conn, session), punch, at).as_dict()


def _fence(engine: Engine, tenant: str, policy: Policy, days: int = 30) -> None:
    with write_tx(engine) as conn:
        set_geofence(conn, tenant, Fence("office", policy, days, OFFICE[0], OFFICE[1], 100.0),
                     "boss@x.si")


def test_enrolment_link_pin_and_revocation(engine: Engine, tenant: str) -> None:
    _employee(engine, tenant)
    with write_tx(engine) as conn:
        token = create_enrolment(conn, tenant, "e1", "boss@x.si")
    with pytest.raises(Invalid), write_tx(engine) as conn:
        sign_in(conn, tenant, token, "0000")
    with pytest.raises(Unauthorized), write_tx(engine) as conn:
        sign_in(conn, tenant, "x" * 32, PIN)
    with write_tx(engine) as conn:
        session, employee = sign_in(conn, tenant, token, PIN)
        enrolment = phone_user(conn, session).enrolment
    assert employee == "e1"
    with write_tx(engine) as conn:
        revoke_enrolment(conn, tenant, enrolment, "boss@x.si")
    with pytest.raises(Unauthorized), read_tx(engine) as conn:
        phone_user(conn, session)
    with pytest.raises(Unauthorized), write_tx(engine) as conn:
        sign_in(conn, tenant, token, PIN)
    with read_tx(engine) as conn:
        actions = [r.action for r in conn.execute(
            select(audit.c.action).where(audit.c.tenant == tenant).order_by(audit.c.id))]
    assert actions == ["phone_enrol", "phone_sign_in", "phone_revoke"]


def test_phone_day_in_chain_and_timesheet(engine: Engine, tenant: str) -> None:
    """Arrival at the wall terminal 07:00, break on the phone 10:00-10:30, departure on
    the phone 15:30 (Tuesday 10 Nov 2026, Ljubljana): 8 h 30 min worked, the paid 30 min
    break included; the phone's chain verifies with the terminals' verifier."""
    _employee(engine, tenant)
    day = datetime(2026, 11, 10, tzinfo=LJUBLJANA)
    ingest(engine, chain_events(tenant, "t1", [("e1", day.replace(hour=7), "arrival")],
                                Ed25519PrivateKey.generate()))
    session = _enrol(engine, tenant)
    _punch(engine, session, PunchType.BREAK_START, day.replace(hour=10))
    _punch(engine, session, PunchType.BREAK_END, day.replace(hour=10, minute=30))
    last = _punch(engine, session, PunchType.DEPARTURE, day.replace(hour=15, minute=30),
                  OUTSIDE)
    assert last["location"] == "recorded" and last["flags"] == []  # no fence: record only
    with read_tx(engine) as conn:
        chain = audit_chain(conn, tenant, phone_device("e1"))
        report = month_report(conn, tenant, 2026, 11, as_of=day + timedelta(days=30))
    assert chain.ok and chain.punches == 3
    sheet = report.employees[0].sheet
    (worked_day,) = [d for d in sheet.days if d.start is not None]
    assert worked_day.break_s == 30 * 60
    # ZDR-1 art. 154(5): the 30 min break counts as working time
    assert sheet.totals.worked_s == 8.5 * 3600 and sheet.totals.days_worked == 1
    assert {s.split("#")[0] for s in worked_day.sources} == {"t1", phone_device("e1")}


def test_clock_skew_is_flagged_and_corrected_and_resend_is_one(engine: Engine,
                                                               tenant: str) -> None:
    _employee(engine, tenant)
    session = _enrol(engine, tenant)
    at = datetime(2026, 11, 10, 6, 0, tzinfo=UTC)
    pid = str(uuid.uuid4())
    first = _punch(engine, session, PunchType.ARRIVAL, at, skew=timedelta(minutes=-9),
                   client_id=pid)
    assert first["flags"] == ["clock_skew"]
    assert first["ts"] == "2026-11-10T06:00:00.000Z"  # the server's time, not the phone's
    again = _punch(engine, session, PunchType.ARRIVAL, at, skew=timedelta(minutes=-9),
                   client_id=pid)
    assert again["duplicate"] is True and again["seq"] == first["seq"]
    small = _punch(engine, session, PunchType.DEPARTURE, at + timedelta(hours=8),
                   skew=timedelta(seconds=40))
    assert small["flags"] == [] and small["seq"] == 2
    with pytest.raises(Invalid), write_tx(engine) as conn:  # dated after it was sent
        record_phone_punch(conn, phone_user(conn, session), PhonePunch(
            str(uuid.uuid4()), PunchType.ARRIVAL, at + timedelta(hours=1), at, None), at)


@pytest.mark.parametrize("policy", list(Policy))
def test_geofence_policies(engine: Engine, tenant: str, policy: Policy) -> None:
    _employee(engine, tenant)
    _fence(engine, tenant, policy)
    session = _enrol(engine, tenant, site="office")
    at = datetime(2026, 11, 10, 6, tzinfo=UTC)
    near = _punch(engine, session, PunchType.ARRIVAL, at, NEAR)
    expected_near = "recorded" if policy is Policy.RECORD else "inside"
    assert near["location"] == expected_near and near["flags"] == []
    later = at + timedelta(hours=8)
    if policy is Policy.REFUSE:
        with pytest.raises(PunchRefused) as refused:
            _punch(engine, session, PunchType.DEPARTURE, later, OUTSIDE)
        assert refused.value.reason == "outside"
        with pytest.raises(PunchRefused) as refused:
            _punch(engine, session, PunchType.DEPARTURE, later, None)
        assert refused.value.reason == "no_location"
        return
    far = _punch(engine, session, PunchType.DEPARTURE, later, OUTSIDE)
    if policy is Policy.FLAG:
        assert far["location"] == "outside" and far["flags"] == ["outside_fence"]
    else:
        assert far["location"] == "recorded" and far["flags"] == []


def test_employee_policy_overrides_the_site(engine: Engine, tenant: str) -> None:
    _employee(engine, tenant)
    _fence(engine, tenant, Policy.RECORD)
    session = _enrol(engine, tenant, site="office", policy=Policy.REFUSE)
    with pytest.raises(PunchRefused):
        _punch(engine, session, PunchType.ARRIVAL, datetime(2026, 11, 10, 6, tzinfo=UTC),
               OUTSIDE)


def test_locations_are_erased_when_retention_ends(engine: Engine, tenant: str) -> None:
    _employee(engine, tenant)
    _fence(engine, tenant, Policy.FLAG, days=2)
    session = _enrol(engine, tenant, site="office")
    at = datetime(2026, 11, 10, 6, tzinfo=UTC)
    _punch(engine, session, PunchType.ARRIVAL, at, NEAR)
    with write_tx(engine) as conn:
        assert erase_expired_everywhere(conn, at + timedelta(days=1)) == 0
        assert erase_expired_everywhere(conn, at + timedelta(days=2, seconds=1)) == 1
        assert conn.execute(select(punch_locations).where(
            punch_locations.c.tenant == tenant)).first() is None
        # the chained punch keeps only "inside"
        chain = audit_chain(conn, tenant, phone_device("e1"))
    assert chain.ok and chain.punches == 1


def test_the_hourly_pass_erases_locations_where_no_phone_punches(engine: Engine,
                                                                  tenant: str) -> None:
    _employee(engine, tenant)
    _fence(engine, tenant, Policy.FLAG, days=2)
    session = _enrol(engine, tenant, site="office")
    at = datetime(2026, 11, 10, 6, tzinfo=UTC)
    _punch(engine, session, PunchType.ARRIVAL, at, NEAR)
    mine = select(punch_locations).where(punch_locations.c.tenant == tenant)
    with write_tx(engine) as conn:
        erase_expired_everywhere(conn, at + timedelta(days=1))
        assert conn.execute(mine).first() is not None
        erase_expired_everywhere(conn, at + timedelta(days=2, seconds=1))
        assert conn.execute(mine).first() is None


def test_fence_geometry() -> None:
    circle = Fence("o", Policy.FLAG, 30, OFFICE[0], OFFICE[1], 100.0)
    assert inside(circle, NEAR.lat, NEAR.lon, 5)
    assert not inside(circle, OUTSIDE.lat, OUTSIDE.lon, 5)
    edge_lat = OFFICE[0] + 0.00117  # about 130 m north
    assert 125 < distance_m(OFFICE[0], OFFICE[1], edge_lat, OFFICE[1]) < 135
    assert not inside(circle, edge_lat, OFFICE[1], 10)
    assert inside(circle, edge_lat, OFFICE[1], 40)  # within the reading's uncertainty
    assert not inside(circle, OFFICE[0], OFFICE[1], 1000)  # too imprecise to judge
    square = Fence("o", Policy.FLAG, 30,
                   polygon=parse_polygon("46.0, 14.0; 46.0, 14.01; 46.01, 14.01; 46.01, 14.0"))
    assert inside(square, 46.005, 14.005, 5)
    assert not inside(square, 46.005, 14.02, 5)
    with pytest.raises(ValueError):
        parse_polygon("46.0, 14.0; 46.0, 14.01")


def test_requests_approved_and_refused_in_the_timesheet(engine: Engine, tenant: str) -> None:
    """Week of Mon 16 Nov 2026: phone punches 07:00-15:00 on Monday and Tuesday (8 h each),
    annual leave asked for and approved Wednesday-Thursday, sick leave with a document
    approved for Friday, and a refused request for the next Monday: 16 h worked, 16 h
    annual leave, 8 h sick leave, nothing on the refused day (counted by hand, 8 h days)."""
    _employee(engine, tenant)
    session = _enrol(engine, tenant)
    monday = datetime(2026, 11, 16, tzinfo=LJUBLJANA)
    for d in (0, 1):
        day = monday + timedelta(days=d)
        _punch(engine, session, PunchType.ARRIVAL, day.replace(hour=7))
        _punch(engine, session, PunchType.DEPARTURE, day.replace(hour=15))
    pdf = Document("bolniski.pdf", "application/pdf", b"%PDF-1.4 test")
    with write_tx(engine) as conn:
        leave = submit_request(conn, tenant, RequestIn(
            "e1", AbsenceKind.ANNUAL_LEAVE, date(2026, 11, 18), date(2026, 11, 19), ""))
        sick = submit_request(conn, tenant, RequestIn(
            "e1", AbsenceKind.SICK_LEAVE, date(2026, 11, 20), date(2026, 11, 20), "gripa",
            pdf))
        other = submit_request(conn, tenant, RequestIn(
            "e1", AbsenceKind.OTHER, date(2026, 11, 23), date(2026, 11, 23), "selitev"))
        with pytest.raises(Invalid):
            submit_request(conn, tenant, RequestIn(
                "e1", AbsenceKind.OTHER, date(2026, 11, 24), date(2026, 11, 24), "",
                Document("x.exe", "application/x-msdownload", b"MZ")))
    with write_tx(engine) as conn:
        approve_request(conn, tenant, leave, "boss@x.si")
        approve_request(conn, tenant, sick, "boss@x.si")
        refuse_request(conn, tenant, other, "boss@x.si", "premalo ljudi ta dan")
        with pytest.raises(Invalid):
            approve_request(conn, tenant, other, "boss@x.si")  # already decided
        assert request_document(conn, tenant, sick).data == pdf.data
    with read_tx(engine) as conn:
        report = month_report(conn, tenant, 2026, 11, as_of=monday + timedelta(days=30))
        states = {r["id"]: r["state"] for r in list_requests(conn, tenant, "e1")}
        actions = [r.action for r in conn.execute(select(audit.c.action).where(
            audit.c.tenant == tenant, audit.c.action.like("absence_request%")))]
    assert states == {leave: "approved", sick: "approved", other: "refused"}
    assert sorted(actions) == ["absence_request"] * 3 + ["absence_request_approved"] * 2 \
        + ["absence_request_refused"]
    totals = report.employees[0].sheet.totals
    assert totals.worked_s == 16 * 3600 and totals.days_worked == 2
    assert totals.absences == {"annual_leave": 16 * 3600, "sick_leave": 8 * 3600}


def test_the_employee_is_mailed_the_decision_once(engine: Engine, tenant: str,
                                                   smtp_server: SmtpServer) -> None:
    """Approved and refused requests reach the employee's address in Slovenian (with the
    manager's reason), once each; an employee without an address is not mailed."""
    _employee(engine, tenant)
    _employee(engine, tenant, "e2")
    with write_tx(engine) as conn:
        conn.execute(update(members).where(members.c.tenant == tenant, members.c.id == "e1")
                     .values(email="ana.novak@primer.si"))
        leave = submit_request(conn, tenant, RequestIn(
            "e1", AbsenceKind.ANNUAL_LEAVE, date(2026, 11, 18), date(2026, 11, 19), ""))
        other = submit_request(conn, tenant, RequestIn(
            "e1", AbsenceKind.OTHER, date(2026, 11, 23), date(2026, 11, 23), "selitev"))
        nobody = submit_request(conn, tenant, RequestIn(
            "e2", AbsenceKind.OTHER, date(2026, 11, 23), date(2026, 11, 23), ""))
    notifier = Notifier(engine, mailer_from_url(smtp_server.url("edc@edge.test")), None)
    with write_tx(engine) as conn:
        approve_request(conn, tenant, leave, "boss@x.si")
        assert notify_decision(conn, notifier, tenant, leave)
        refuse_request(conn, tenant, other, "boss@x.si", "premalo ljudi ta dan")
        assert notify_decision(conn, notifier, tenant, other)
        assert not notify_decision(conn, notifier, tenant, other)  # once
        refuse_request(conn, tenant, nobody, "boss@x.si", "ne")
        assert not notify_decision(conn, notifier, tenant, nobody)  # no address
    assert notifier.deliver_due() == 2
    mails = {m["Subject"]: m.get_content() for m in smtp_server.wait_for(2)}
    assert "18. 11. 2026–19. 11. 2026" in mails["Vaša prošnja za odsotnost je odobrena"]
    refused = mails["Vaša prošnja za odsotnost je zavrnjena"]
    assert "Razlog: premalo ljudi ta dan" in refused and "Pozdravljeni, Ana" in refused
