"""Acceptance, end to end: a day of punches made at a real agent daemon (time-clock
terminal, simulated card reader) while the broker is down reach a real bridge once the
broker is up: every punch once, in seq order, and the chain verifies with the device key.

Real Mosquitto on a free port, the bridge's Bridge class with its MQTT link and ingest,
the agent's AgentDaemon and AgentLink; only the agent's clock is a stand-in so that the
punches spread over a working day."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Engine, select

from agent.config import load_config
from agent.daemon import AgentDaemon
from agent.store.membership import apply_changes
from agent.sync_link import build_agent_link
from cloud_bridge.attendance.chain_audit import audit_chain, set_device_key
from cloud_bridge.attendance.reports import month_report
from cloud_bridge.attendance.timesheet import Rules
from cloud_bridge.db_schema import events, read_tx, write_tx
from cloud_bridge.service import Bridge
from contracts.membership_changes import parse_changes
from tests.attendance.punch_plan import LJ
from tests.bridge.conftest import bridge_settings
from tests.cloud_harness import wait_until
from tests.mqtt_broker import Broker
from tests.test_time_clock import employee

DEVICE = "clock-e2e"
CARDS = {f"10{i}": f"04A{i}00000000{i}A" for i in range(1, 6)}


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def local(h: int, m: int = 0) -> datetime:
    return datetime(2026, 11, 3, h, m, tzinfo=LJ).astimezone(UTC)


# (local time, employee, type chosen on the kiosk or None for the suggested one)
DAY = [
    (local(7, 0), "101", None), (local(7, 5), "102", None), (local(7, 10), "103", None),
    (local(7, 12), "104", None), (local(7, 20), "105", None),
    (local(11, 0), "101", "break_start"), (local(11, 30), "101", None),
    (local(13, 0), "102", "trip_start"), (local(14, 0), "102", None),
    (local(15, 0), "101", None), (local(15, 5), "102", None), (local(15, 10), "103", None),
    (local(16, 12), "104", "departure"),  # 105 never leaves: a missing departure
]
EXPECTED_TYPES = ["arrival"] * 5 + ["break_start", "break_end", "trip_start", "trip_end"] + [
    "departure"] * 4


def test_offline_day_reaches_the_bridge_once_in_order(
        tmp_path: Path, engine: Engine, db_url: str, keys_dir: Path, tenant: str,
        write_config: Callable[..., Path], hmac_key: bytes) -> None:
    signing = Ed25519PrivateKey.generate()
    broker = Broker(tmp_path / "broker")  # not started: the site is offline
    cfg = write_config(f"[mqtt]\nport = {broker.port}\nbatch_size = 4\n", gates="""
[[terminals]]
id = "t1"
choose_window_s = 30

[[readers]]
id = "wall"
url = "sim:"
terminal = "t1"
""")
    raw = base64.b64encode(signing.private_bytes_raw()).decode()
    cfg.write_text(cfg.read_text()
                   .replace('tenant = "t1"', f'tenant = "{tenant}"')
                   .replace('device = "dev1"', f'device = "{DEVICE}"')
                   .replace("[keys]\n", f'[keys]\ndevice_signing_key = "base64:{raw}"\n'))
    clock = FakeClock()
    daemon = AgentDaemon(load_config(cfg), clock=clock)
    changes = [c for emp, uid in CARDS.items()
               for c in employee(hmac_key, emp, uid, f"Oseba {emp}")]
    with daemon.store.transaction() as conn:
        apply_changes(conn, parse_changes(changes))
    daemon.start()
    link = build_agent_link(daemon, daemon.config.mqtt, max_backoff_s=0.5, ack_timeout_s=2)
    link.start()
    bridge: Bridge | None = None
    try:
        assert daemon.time_clock is not None
        reader = daemon.readers["wall"]
        for at, emp, chosen in DAY:
            clock.now = at
            view = reader.inject("uid", CARDS[emp])
            assert view.status == "pending", view
            if chosen is not None:
                assert daemon.time_clock.choose(view.pending_id, chosen).status == "recorded"
        daemon.time_clock.sign_head()
        last_seq = daemon.store.conn.execute("SELECT max(seq) FROM outbox").fetchone()[0]
        punches_made = daemon.store.conn.execute(
            "SELECT count(*) FROM outbox WHERE type = 'attendance.punch'").fetchone()[0]
        assert punches_made == len(DAY) and daemon.link_online is not True

        broker.start()  # the site comes online; the bridge starts with it
        bridge = Bridge(bridge_settings(db_url, keys_dir, broker.port), engine=engine).start()

        def stored() -> list[tuple[int, str, str, dict]]:
            with read_tx(engine) as conn:
                return [(int(r.seq), r.type, r.ts, r.data) for r in conn.execute(
                    select(events.c.seq, events.c.type, events.c.ts, events.c.data).where(
                        events.c.tenant == tenant, events.c.device == DEVICE)
                    .order_by(events.c.seq))]

        wait_until(lambda: len(stored()) >= last_seq, timeout=30,
                   what="every event of the offline day in the bridge")
        wait_until(lambda: daemon.store.conn.execute("SELECT count(*) FROM outbox")
                   .fetchone()[0] == 0, timeout=15, what="the agent's outbox acked empty")
    finally:
        link.stop()
        daemon.stop()
        if bridge is not None:
            bridge.stop()
        broker.stop()

    rows = stored()
    assert [r[0] for r in rows] == list(range(1, last_seq + 1))  # each seq once, no gap
    punches = [r for r in rows if r[1] == "attendance.punch"]
    assert [p[3]["type"] for p in punches] == EXPECTED_TYPES
    assert [p[3]["employee"] for p in punches] == [d[1] for d in DAY]
    assert [p[2] for p in punches] == sorted(p[2] for p in punches)  # in time order too
    assert punches[0][2] == "2026-11-03T06:00:00.000Z"  # the tap's moment, not the upload's

    public = base64.b64encode(signing.public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)).decode()
    with read_tx(engine) as conn:
        # before anyone registers a key, the one in the terminal's retained state is used
        reported = audit_chain(conn, tenant, DEVICE)
    assert reported.ok and reported.signatures_checked, reported.summary()
    assert reported.key_source == "reported by the device" and not reported.key_mismatch
    with write_tx(engine) as conn:
        set_device_key(conn, tenant, DEVICE, public, "admin:test")
    with read_tx(engine) as conn:
        chain = audit_chain(conn, tenant, DEVICE)
        report = month_report(conn, tenant, 2026, 11, Rules(overtime_basis="day"))
    assert chain.ok and chain.signatures_checked, chain.summary()
    assert chain.key_source == "registered" and not chain.key_mismatch
    # a registered key that is not the terminal's: heads fail and the mismatch is named
    other = base64.b64encode(Ed25519PrivateKey.generate().public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)).decode()
    with write_tx(engine) as conn:
        set_device_key(conn, tenant, DEVICE, other, "admin:test")
    with read_tx(engine) as conn:
        wrong = audit_chain(conn, tenant, DEVICE)
    assert not wrong.ok and wrong.key_mismatch
    assert chain.punches == len(DAY) and chain.signed_heads >= 1 and chain.unsigned_tail == 0
    day = {e.employee: e.sheet.days[2] for e in report.employees}
    assert {k: d.worked_s / 3600 for k, d in day.items()} == {
        "101": 8.0, "102": 8.0, "103": 8.0, "104": 9.0, "105": 0.0}
    assert day["102"].trip_s == 3600 and day["104"].overtime_s == 3600
    assert day["105"].alerts and day["105"].alerts[0].startswith("missing departure")
