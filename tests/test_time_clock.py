"""E-EDC time clock: punch suggestions, the tamper-evident chain, PIN lockout, and the
kiosk page in headless Chromium (also with the broker down)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.attendance.pin_guard import PinGuard
from agent.attendance.time_clock import TimeClock
from agent.config import TerminalConfig, load_config
from agent.daemon import AgentDaemon
from agent.live_feed import LiveFeed
from agent.store.local_store import LocalStore
from agent.store.membership import apply_changes
from agent.store.outbox import Outbox
from contracts.credential_hash import credential_hash
from contracts.membership_changes import parse_changes
from contracts.pin_hash import hash_pin
from contracts.punch_chain import verify_chain
from tests.browser import chromium
from tests.cloud_harness import wait_until

LJ_MORNING = datetime(2026, 3, 27, 6, 58, tzinfo=UTC)  # 07:58 in Ljubljana


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def employee(key: bytes, member_id: str, uid: str, name: str, pin: str | None = None) -> list:
    return [
        {"entity": "member", "op": "upsert", "id": member_id, "first_name": name,
         **({"pin_hash": hash_pin(pin)} if pin else {})},
        {"entity": "credential", "op": "upsert", "id": f"{member_id}-c", "member_id": member_id,
         "kind": "card", "hash": credential_hash(key, "uid", uid)},
    ]


@pytest.fixture
def setup(tmp_path: Path, hmac_key: bytes) -> Iterator[tuple[TimeClock, FakeClock, LocalStore]]:
    store = LocalStore(tmp_path / "tc.db")
    with store.transaction() as conn:
        apply_changes(conn, parse_changes(employee(hmac_key, "101", "04AA000000000A", "Ana", "4821")
                                          + employee(hmac_key, "102", "04BB000000000B", "Luka")))
    clock = FakeClock(LJ_MORNING)
    tc = TimeClock(store, Outbox(store, "t1", "tc1"), LiveFeed(),
                   [TerminalConfig(id="t1", choose_window_s=0.5)], hmac_key, None,
                   Ed25519PrivateKey.generate(), __import__("zoneinfo").ZoneInfo(
                       "Europe/Ljubljana"),
                   PinGuard(store, max_failures=5, lock_minutes=15,
                            terminal_failures_per_minute=10), clock, head_every=3)
    yield tc, clock, store
    tc.stop()


def outbox_events(store: LocalStore) -> list[dict]:
    return [{"device": "tc1", "seq": r[0], "ts": r[1], "type": r[2], "data": json.loads(r[3])}
            for r in store.conn.execute("SELECT seq, ts, type, data FROM outbox ORDER BY seq")]


def test_suggestions_follow_the_day(setup) -> None:
    tc, clock, store = setup
    first = tc.read("t1", "uid", "04AA000000000A")
    assert first.status == "pending" and first.punch_type == "arrival"
    assert first.first_name == "Ana" and first.message == "Pozdravljeni, Ana"
    rec = tc.choose(first.pending_id, "arrival")  # type: ignore[arg-type]
    assert rec.status == "recorded" and rec.seq == 1
    clock.advance(hours=4)
    second = tc.read("t1", "uid", "04AA000000000A")
    assert second.punch_type == "departure"
    tc.choose(second.pending_id, "break_start")  # type: ignore[arg-type]
    clock.advance(minutes=30)
    assert tc.read("t1", "uid", "04AA000000000A").punch_type == "break_end"
    # the next person tapping records the one still choosing, with the suggestion
    luka = tc.read("t1", "uid", "04BB000000000B")
    assert luka.punch_type == "arrival"
    types = [e["data"]["type"] for e in outbox_events(store) if e["type"] == "attendance.punch"]
    assert types == ["arrival", "break_start", "break_end"]
    with pytest.raises(LookupError):
        tc.choose(second.pending_id, "arrival")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown punch type"):
        tc.choose(luka.pending_id, "coffee")  # type: ignore[arg-type]


def test_pending_is_recorded_when_the_window_runs_out(setup) -> None:
    tc, _clock, store = setup
    tc.start()
    view = tc.read("t1", "uid", "04AA000000000A")
    wait_until(lambda: any(e["type"] == "attendance.punch" for e in outbox_events(store)),
               timeout=5, what="punch recorded after the choose window")
    (punch,) = [e for e in outbox_events(store) if e["type"] == "attendance.punch"]
    assert punch["data"]["type"] == view.punch_type == "arrival"
    # the punch keeps the moment of the tap
    assert punch["ts"] == "2026-03-27T06:58:00.000Z"


def test_night_shift_departure_then_new_shift(setup) -> None:
    tc, clock, _ = setup
    clock.now = datetime(2026, 3, 28, 21, 0, tzinfo=UTC)  # 22:00 local, the night before DST
    v = tc.read("t1", "uid", "04AA000000000A")
    tc.choose(v.pending_id, v.punch_type)  # type: ignore[arg-type]
    clock.now = datetime(2026, 3, 29, 4, 0, tzinfo=UTC)  # 06:00 CEST after the clocks jumped
    v = tc.read("t1", "uid", "04AA000000000A")
    assert v.punch_type == "departure"
    tc.choose(v.pending_id, v.punch_type)  # type: ignore[arg-type]
    clock.advance(hours=17)
    assert tc.read("t1", "uid", "04AA000000000A").punch_type == "arrival"


def test_refusals_are_recorded_without_the_uid(setup) -> None:
    tc, _, store = setup
    assert tc.read("t1", "uid", "04DEADBEEF0001").status == "refused"
    assert tc.read("t1", "uid", "\x00garbage").message == "Neberljiva koda"
    refused = [e for e in outbox_events(store) if e["type"] == "attendance.refused"]
    assert [e["data"]["reason"] for e in refused] == ["unknown", "malformed"]
    assert "DEADBEEF" not in json.dumps(refused)


def make_chain(tc: TimeClock, clock: FakeClock, store: LocalStore, n: int) -> list[dict]:
    for i in range(n):
        v = tc.read("t1", "uid", "04AA000000000A" if i % 2 else "04BB000000000B")
        tc.choose(v.pending_id, v.punch_type)  # type: ignore[arg-type]
        clock.advance(minutes=7)
    tc.sign_head()
    return outbox_events(store)


def test_chain_verifies_and_every_kind_of_tampering_is_found(setup) -> None:
    tc, clock, store = setup
    events = make_chain(tc, clock, store, 8)
    public = tc.signing_key.public_key()
    report = verify_chain(events, public)
    assert report.ok and report.punches == 8 and report.signed_heads >= 3

    altered = json.loads(json.dumps(events))
    altered[2]["data"]["type"] = "trip_start"  # someone edits a punch type
    r = verify_chain(altered, public)
    assert not r.ok and r.break_seq == altered[2]["seq"] and "altered" in (r.first_break or "")

    moved = json.loads(json.dumps(events))
    moved[1]["ts"] = "2026-03-27T05:00:00.000Z"  # someone moves an arrival earlier
    assert not verify_chain(moved, public).ok

    punch_4 = [e for e in events if e["type"] == "attendance.punch"][3]
    deleted = [e for e in events if e is not punch_4]
    r = verify_chain(deleted, public)
    assert not r.ok and "deleted" in (r.first_break or "") and r.break_seq == punch_4["seq"]
    # even without the seq check, the chain itself shows the hole
    renumbered = [{**e, "seq": i + 1} for i, e in enumerate(deleted)]
    r = verify_chain(renumbered, public)
    assert not r.ok and "deleted, replaced or reordered" in (r.first_break or "")
    head = next(e for e in events if e["type"] == "attendance.chain_head")
    assert not verify_chain([e for e in events if e is not head], public).ok

    punches = [e for e in events if e["type"] == "attendance.punch"]
    swapped = json.loads(json.dumps(events))
    i, j = swapped.index(punches[1]), swapped.index(punches[2])
    swapped[i]["data"], swapped[j]["data"] = swapped[j]["data"], swapped[i]["data"]
    assert not verify_chain(swapped, public).ok
    reordered = [*events[:2], events[3], events[2], *events[4:]]
    assert not verify_chain(reordered, public).ok

    forged = json.loads(json.dumps(events))
    head = next(e for e in forged if e["type"] == "attendance.chain_head")
    head["data"]["sig"] = base64.b64encode(
        Ed25519PrivateKey.generate().sign(bytes.fromhex(head["data"]["hash"]))).decode()
    r = verify_chain(forged, public)
    assert not r.ok and "forged" in (r.first_break or "")


def test_pin_punch_and_brute_force_lockout(setup, tmp_path: Path) -> None:
    tc, _, store = setup
    ok = tc.pin("t1", "101", "4821")
    assert ok.status == "pending" and ok.first_name == "Ana"
    tc.choose(ok.pending_id, "arrival")  # type: ignore[arg-type]
    for _ in range(5):
        assert tc.pin("t1", "101", "0000").message == "Napačna številka ali PIN"
    locked = tc.pin("t1", "101", "4821")  # even the right PIN is refused now
    assert locked.status == "refused" and locked.retry_after_s > 800
    # a restart does not lift the lock
    guard = PinGuard(store, max_failures=5, lock_minutes=15, terminal_failures_per_minute=10)
    assert guard.check("t2", "101", "4821").problem == "locked"
    # sweeping employee numbers from one terminal is slowed down too
    for n in range(5):
        tc.pin("t1", str(200 + n), "1234")
    swept = tc.pin("t1", "102", "1234")
    assert swept.status == "refused" and swept.retry_after_s > 0
    assert tc.pin("t1", "abc!", "12").status == "refused"


# --- the kiosk page in a real browser --------------------------------------------------

@pytest.fixture
def kiosk_daemon(tmp_path: Path, write_config: Callable[..., Path],
                 hmac_key: bytes) -> Iterator[AgentDaemon]:
    signing = Ed25519PrivateKey.generate()
    raw = signing.private_bytes_raw()
    from tests.mqtt_broker import free_port

    dead_port = free_port()  # nothing listens: the broker is down
    cfg = write_config(
        f'[local_http]\nport = 0\n[mqtt]\nport = {dead_port}\n', gates="""
[[terminals]]
id = "t1"
choose_window_s = 3

[[readers]]
id = "wall"
url = "sim:"
terminal = "t1"
""")
    text = cfg.read_text().replace(
        "[keys]\n", f'[keys]\ndevice_signing_key = "base64:{base64.b64encode(raw).decode()}"\n')
    cfg.write_text(text)
    daemon = AgentDaemon(load_config(cfg))
    with daemon.store.transaction() as conn:
        apply_changes(conn, parse_changes(employee(hmac_key, "101", "04AA000000000A", "Špela")))
    daemon.start()
    from agent.sync_link import build_agent_link

    link = build_agent_link(daemon, daemon.config.mqtt, max_backoff_s=0.5)  # type: ignore[arg-type]
    link.start()
    yield daemon
    link.stop()
    daemon.stop()


def test_kiosk_shows_greeting_and_result_with_broker_down(
    kiosk_daemon: AgentDaemon, artifacts_dir: Path
) -> None:
    assert kiosk_daemon.http is not None
    url = f"http://127.0.0.1:{kiosk_daemon.http.port}/kiosk/t1"
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)
        page.wait_for_selector("text=Brez povezave")  # offline badge: the broker is down
        page.wait_for_timeout(300)  # the event stream is open
        kiosk_daemon.readers["wall"].inject("uid", "04AA000000000A")  # type: ignore[attr-defined]
        page.wait_for_selector("[data-testid=greeting] >> text=Pozdravljeni, Špela")
        page.screenshot(path=str(artifacts_dir / "kiosk-pending.png"))
        page.click("#types button[data-type=break_start]")
        page.wait_for_selector("[data-testid=result] >> text=Začetek malice zabeležen, Špela")
        page.screenshot(path=str(artifacts_dir / "kiosk-recorded.png"))
        kiosk_daemon.readers["wall"].inject("uid", "04FFFFFFFFFF01")  # type: ignore[attr-defined]
        page.wait_for_selector("[data-testid=result] >> text=Neznana kartica")
    punches = [json.loads(r[0]) for r in kiosk_daemon.store.conn.execute(
        "SELECT data FROM outbox WHERE type = 'attendance.punch'")]
    assert [p["type"] for p in punches] == ["break_start"]
    assert kiosk_daemon.link_online is False


def test_terminal_texts_follow_the_language(setup) -> None:
    from contracts.i18n import use_language

    tc, _, _ = setup
    with use_language("en"):
        view = tc.read("t1", "uid", "04AA000000000A")
        assert view.message == "Hello, Ana" and view.as_dict()["labels"]["arrival"] == "Arrival"
        recorded = tc.choose(view.pending_id, "break_start")  # type: ignore[arg-type]
        assert recorded.message == "Start of break recorded, Ana"
        refused = tc.read("t1", "uid", "04DEADBEEF0001")
        assert refused.message == "Unknown card" and refused.problem == "unknown"
    assert tc.read("t1", "uid", "04DEADBEEF0001").message == "Neznana kartica"


def test_pin_accepts_older_member_ids_with_letters(setup, hmac_key: bytes) -> None:
    """Member ids made before digits-only numbers (m-3f9a…) can still punch by PIN."""
    tc, _, store = setup
    with store.transaction() as conn:
        apply_changes(conn, parse_changes(employee(hmac_key, "m-3f9a0c", "04CC000000000C",
                                                   "Luka", "5173")))
    assert tc.pin("t1", "m-3f9a0c", "5173").first_name == "Luka"
    assert tc.pin("t1", "m-3f9a0c", "0000").problem == "wrong"
    assert tc.pin("t1", "-m", "5173").problem == "malformed"
    assert tc.pin("t1", "m 3f", "5173").problem == "malformed"
