"""Nothing wedges the pipes (issue 14, items 1 and 5), on SQLite and PostgreSQL with a
real broker: a poisoned event is refused and quarantined while everything else is
stored; a database refusal is narrowed down to the event; unknown tenants and event ids
reused under another seq are refused with a reason."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from cloud_bridge.db_schema import device_cursor, quarantine
from cloud_bridge.service import Bridge
from cloud_bridge.wire import Inbound
from tests.bridge.conftest import bridge_settings
from tests.bridge.device_emulator import DeviceEmulator, batch_payload, make_event
from tests.bridge.test_ingest import stored_seqs


def quarantined(engine: Engine, tenant: str) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(quarantine).where(
            quarantine.c.tenant == tenant).order_by(quarantine.c.id)).mappings()]


def acked(engine: Engine, tenant: str, device: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(device_cursor.c.acked_seq).where(
            device_cursor.c.tenant == tenant, device_cursor.c.device == device)).scalar() or 0)


def wait_for(check: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return bool(check())  # type: ignore[operator]


def poison_payload(tenant: str, device: str, seqs: range, poison: dict[int, object]) -> bytes:
    """A batch as Python's json writes it: NaN and Infinity go out as bare words."""
    events = [make_event(tenant, device, s, data={"v": poison[s]} if s in poison else None)
              for s in seqs]
    return json.dumps({"v": 1, "tenant": tenant, "device": device, "events": events},
                      ensure_ascii=True).encode()


def test_a_poison_batch_between_legitimate_ones_stops_nobody(
        bridge: Bridge, engine: Engine, broker_port: int, tenant: str) -> None:
    good = DeviceEmulator(broker_port, tenant, "gate-ok")
    bad = DeviceEmulator(broker_port, tenant, "gate-bad")
    good.send(1, 3)
    bad.send(1, 3)
    poison = {5: float("nan"), 6: float("inf"), 7: -float("inf"), 8: "\ud800", 9: "a\x00b"}
    poisoned = poison_payload(tenant, "gate-bad", range(4, 11), poison)
    bad.publish(bad.topics.events, poisoned)
    bad.publish(bad.topics.events, b'{"v":1,"tenant":"%s","device":"gate-bad","events":[%s]}'
                % (tenant.encode(), json.dumps(make_event(tenant, "gate-bad", 11, data={"x": 1})
                                               ).replace("1}", "1e400}", 1).encode()))
    bad.send(12, 14)
    good.send(4, 6)
    sent = time.monotonic()
    assert wait_for(lambda: stored_seqs(engine, tenant, "gate-ok") == list(range(1, 7))
                    and acked(engine, tenant, "gate-bad") == 14, 1.0), (
        f"after 1 s: ok={stored_seqs(engine, tenant, 'gate-ok')} "
        f"bad acked={acked(engine, tenant, 'gate-bad')} stats={bridge.stats}")
    assert time.monotonic() - sent < 1.5
    assert good.wait_ack(6, 5) and bad.wait_ack(14, 5)
    assert stored_seqs(engine, tenant, "gate-bad") == [1, 2, 3, 4, 10, 12, 13, 14]
    rows = {r["seq"]: r for r in quarantined(engine, tenant)}
    assert sorted(rows) == [5, 6, 7, 8, 9, 11]
    assert all(r["settles"] and r["device"] == "gate-bad" for r in rows.values())
    assert "NaN" in str(rows[5]["reason"]) and "Infinity" in str(rows[6]["reason"])
    assert "surrogate" in str(rows[8]["reason"]) and "NUL" in str(rows[9]["reason"])
    assert "Infinity" in str(rows[11]["reason"])  # 1e400 overflows to infinity
    assert b"NaN" in bytes(rows[5]["raw"])  # the copy keeps what the device sent
    assert bridge.stats["db_retries"] == 0
    # the same poison again (a device that missed the ack) is counted, not stored twice
    bad.publish(bad.topics.events, poisoned)
    assert wait_for(lambda: {r["seq"]: r["times"] for r in quarantined(engine, tenant)}[5] == 2,
                    5)
    assert len(quarantined(engine, tenant)) == 6
    good.close()
    bad.close()


@pytest.fixture
def refusing_db(engine: Engine) -> Iterator[Engine]:
    """The database itself refuses events of type test.refused (a constraint of its own),
    as it would refuse a value it cannot hold."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_test BEFORE INSERT ON events "
                "WHEN NEW.type = 'test.refused' BEGIN SELECT RAISE(ABORT, 'refused'); END")
        else:
            conn.exec_driver_sql("ALTER TABLE events ADD CONSTRAINT refuse_test "
                                 "CHECK (type <> 'test.refused') NOT VALID")
    yield engine
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER refuse_test")
        else:
            conn.exec_driver_sql("ALTER TABLE events DROP CONSTRAINT refuse_test")


def test_a_database_refusal_is_narrowed_to_the_event(
        refusing_db: Engine, db_url: str, keys_dir: Path, tenant: str) -> None:
    bridge = Bridge(bridge_settings(db_url, keys_dir, 1), engine=refusing_db)  # not started

    def msg(device: str, events: list[dict[str, object]]) -> Inbound:
        return Inbound(tenant, device, "events", batch_payload(tenant, device, events), 0, 0, 0)

    msgs = [msg("d1", [make_event(tenant, "d1", s) for s in (1, 2)]),
            msg("d2", [make_event(tenant, "d2", 1),
                       make_event(tenant, "d2", 2, type_="test.refused"),
                       make_event(tenant, "d2", 3)]),
            msg("d3", [make_event(tenant, "d3", 1)])]
    bridge.process(msgs)  # one transaction at first: the refusal must not sink d1 and d3
    assert stored_seqs(refusing_db, tenant, "d1") == [1, 2]
    assert stored_seqs(refusing_db, tenant, "d2") == [1, 3]
    assert stored_seqs(refusing_db, tenant, "d3") == [1]
    assert [acked(refusing_db, tenant, d) for d in ("d1", "d2", "d3")] == [2, 3, 1]
    [row] = quarantined(refusing_db, tenant)
    assert (row["device"], row["seq"], row["settles"]) == ("d2", 2, True)
    assert str(row["reason"]).startswith("database refused it:")
    assert bridge.stats["db_retries"] == 0


def test_unknown_tenants_are_refused_and_kept(
        bridge: Bridge, engine: Engine, broker_port: int, tenant: str) -> None:
    stranger = f"nobody{uuid.uuid4().hex[:6]}"
    lost = DeviceEmulator(broker_port, stranger, "gate-1")
    known = DeviceEmulator(broker_port, tenant, "gate-1")
    lost.send(1, 3)
    lost.publish(lost.topics.state, json.dumps({"v": 1, "online": True}))
    known.send(1, 2)
    assert known.wait_ack(2)
    assert wait_for(lambda: len(quarantined(engine, stranger)) == 2, 5)
    assert stored_seqs(engine, stranger, "gate-1") == []
    assert lost.acks == []  # not acked: the device keeps its events until the tenant exists
    rows = quarantined(engine, stranger)
    assert all("unknown tenant" in str(r["reason"]) and not r["settles"] for r in rows)
    lost.close()
    known.close()


def test_an_event_id_reused_under_another_seq_is_refused(
        bridge: Bridge, engine: Engine, broker_port: int, tenant: str) -> None:
    dev = DeviceEmulator(broker_port, tenant, "gate-1")
    other = DeviceEmulator(broker_port, tenant, "gate-2")
    first = make_event(tenant, "gate-1", 1)
    dev.publish(dev.topics.events, batch_payload(tenant, "gate-1", [first]))
    assert dev.wait_ack(1)
    dev.publish(dev.topics.events, batch_payload(tenant, "gate-1", [
        {**make_event(tenant, "gate-1", 2), "id": first["id"]}, make_event(tenant, "gate-1", 3)]))
    other.publish(other.topics.events, batch_payload(tenant, "gate-2", [
        {**make_event(tenant, "gate-2", 1), "id": first["id"]}]))
    assert dev.wait_ack(3) and other.wait_ack(1)
    assert stored_seqs(engine, tenant, "gate-1") == [1, 3]
    assert stored_seqs(engine, tenant, "gate-2") == []
    rows = quarantined(engine, tenant)
    assert sorted((r["device"], r["seq"]) for r in rows) == [("gate-1", 2), ("gate-2", 1)]
    assert all("event id already stored" in str(r["reason"]) for r in rows)
    dev.send(1, 1)  # a plain duplicate delivery is still harmless
    dev.send(4, 4)
    assert dev.wait_ack(4)
    assert stored_seqs(engine, tenant, "gate-1") == [1, 3, 4]
    dev.close()
    other.close()


def test_an_invalid_event_of_a_sound_batch_is_refused_alone(
        bridge: Bridge, engine: Engine, broker_port: int, tenant: str) -> None:
    dev = DeviceEmulator(broker_port, tenant, "gate-1")
    ok = [make_event(tenant, "gate-1", s) for s in range(1, 5)]
    dev.publish(dev.topics.events, batch_payload(tenant, "gate-1", [
        ok[0], {**ok[1], "extra": 1}, {**ok[2], "ts": "yesterday"}, {**ok[3], "type": "NoDots"}]))
    dev.send(5, 5)
    assert dev.wait_ack(5)
    assert stored_seqs(engine, tenant, "gate-1") == [1, 5]
    reasons = {r["seq"]: str(r["reason"]) for r in quarantined(engine, tenant)}
    assert reasons.keys() == {2, 3, 4}
    assert reasons[2].startswith("events.1.extra") and reasons[3].startswith("events.2.ts")
    dev.close()


def test_poison_already_stored_by_an_old_bridge_is_swept_to_the_quarantine(
        tmp_path: Path) -> None:
    """An SQLite database from before the JSON index: its events may hold NaN. Opening
    it moves those rows to the quarantine (settled) and builds the index."""
    import sqlite3

    from cloud_bridge.db_schema import make_engine

    path = tmp_path / "old.sqlite3"
    make_engine(f"sqlite:///{path}").dispose()
    db = sqlite3.connect(path)
    with db:
        db.execute("DROP INDEX ix_events_member_sqlite")
        db.execute("DROP TABLE quarantine")
        for seq, data in ((1, '{"member":"m1"}'), (2, '{"t":NaN}'), (3, '{"member":"m2"}')):
            db.execute("INSERT INTO events VALUES ('t1', 'd1', ?, ?, "
                       "'2026-11-24T19:06:38.195Z', 'device.health', ?, 0)",
                       (seq, str(uuid.uuid4()), data))
    db.close()
    engine = make_engine(f"sqlite:///{path}")
    assert stored_seqs(engine, "t1", "d1") == [1, 3]
    [row] = quarantined(engine, "t1")
    assert (row["seq"], row["settles"], bytes(row["raw"])) == (2, True, b'{"t":NaN}')
    with engine.connect() as conn:  # the index is there and the member query works
        assert conn.exec_driver_sql(
            "SELECT count(*) FROM events WHERE tenant = 't1' AND "
            "json_extract(data, '$.member') = 'm2'").scalar() == 1
        assert conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = "
                                    "'ix_events_member_sqlite'").scalar() == 1
    engine.dispose()
