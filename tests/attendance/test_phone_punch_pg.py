"""Phone punches stored as ingest stores a device's events, on both databases: into the
month's partition with their ledger keys on PostgreSQL (never events_default), and one
chain per employee however many punches of theirs arrive at once."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, func, insert, select, text

from cloud_bridge.attendance.chain_audit import audit_chain
from cloud_bridge.attendance.phone_enrolment import create_enrolment, phone_user, sign_in
from cloud_bridge.attendance.phone_punch import PhonePunch, phone_device, record_phone_punch
from cloud_bridge.db_schema import events, is_sqlite, members, write_tx
from cloud_bridge.partitions import event_keys
from contracts.pin_hash import hash_pin
from contracts.punch_types import PunchType
from tests.attendance.conftest import ingest
from tests.attendance.punch_plan import chain_events

PIN = "4821"


def _session(engine: Engine, tenant: str, employee: str) -> str:
    now = int(time.time())
    with write_tx(engine) as conn:
        conn.execute(insert(members).values(tenant=tenant, id=employee, first_name="Ana",
                                            last_name="Novak", blocked=False,
                                            pin_hash=hash_pin(PIN), created_at=now,
                                            updated_at=now))
        token = create_enrolment(conn, tenant, employee, "boss@x.si", None, None)
        return sign_in(conn, tenant, token, PIN)[0]


def _punch(engine: Engine, session: str, at: datetime, kind: PunchType = PunchType.ARRIVAL,
           client_id: str | None = None) -> None:
    punch = PhonePunch(client_id or str(uuid.uuid4()), kind, at, at, None)
    with write_tx(engine) as conn:
        record_phone_punch(conn, phone_user(conn, session), punch, at)


def test_a_punch_in_a_new_month_goes_to_its_partition_and_the_ledger(
        engine: Engine, tenant: str) -> None:
    session = _session(engine, tenant, "e1")
    # a month no device has sent anything in yet: no partition for it
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    _punch(engine, session, at)
    device = phone_device("e1")
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(events).where(
            events.c.tenant == tenant, events.c.device == device)).scalar_one()
        assert stored == 1
        if not is_sqlite(conn):
            keys = conn.execute(select(func.count()).select_from(event_keys).where(
                event_keys.c.tenant == tenant, event_keys.c.device == device)).scalar_one()
            assert keys == 1
            in_default = conn.execute(text(
                "SELECT count(*) FROM events_default WHERE tenant = :t"), {"t": tenant}
            ).scalar_one()
            assert in_default == 0
    # a terminal's punches of the same month are stored after it (the month's partition
    # can be made: nothing of the month waits in events_default)
    key = Ed25519PrivateKey.generate()
    ingest(engine, chain_events(tenant, "clock-1", [("e1", at + timedelta(hours=1), "departure")],
                                key))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events).where(
            events.c.tenant == tenant, events.c.device == "clock-1")).scalar_one() >= 1


def test_punches_of_one_employee_at_once_make_one_chain(engine: Engine, tenant: str) -> None:
    session = _session(engine, tenant, "e2")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    errors: list[BaseException] = []
    same_id = str(uuid.uuid4())

    def punch(i: int) -> None:
        # punches 0 and 1 are one punch sent twice (a queue flushed while it was in flight)
        try:
            _punch(engine, session, start + timedelta(minutes=i),
                   PunchType.ARRIVAL if i % 2 == 0 else PunchType.DEPARTURE,
                   client_id=same_id if i < 2 else None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=punch, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # SQLite: a writer may time out waiting for the lock, never fork; PostgreSQL: none
    assert not errors or is_sqlite(engine), errors
    device = phone_device("e2")
    with engine.connect() as conn:
        seqs = [r.seq for r in conn.execute(select(events.c.seq).where(
            events.c.tenant == tenant, events.c.device == device).order_by(events.c.seq))]
        audit = audit_chain(conn, tenant, device, None)
    assert seqs == list(range(1, len(seqs) + 1))  # no seq twice, no gap
    assert len(seqs) == 7 - len(errors)  # the punch sent twice is stored once
    assert audit.ok, audit
