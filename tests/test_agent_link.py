"""The agent's MQTT link against a real Mosquitto: outbox delivery and acks, signed
membership batches and snapshots, commands, and everything malformed."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent.config import load_config
from agent.daemon import AgentDaemon
from agent.sync_link import build_agent_link
from contracts.credential_hash import credential_hash
from sync.agent_link import AgentLink
from tests.cloud_harness import CloudHarness, wait_until
from tests.command_helpers import expires_soon
from tests.mqtt_broker import Broker

UID = "04A1B2C3D4E5F6"
CHANGES = "es/v1/t1/members/changes"
SYNC = "es/v1/t1/dev1/members/sync"


@dataclass
class Site:
    broker: Broker
    daemon: AgentDaemon
    link: AgentLink
    cloud: CloudHarness
    key: Ed25519PrivateKey
    hmac_key: bytes

    def tap(self, uid: str = UID, reader: str = "entry") -> str:
        out = self.daemon.readers[reader].inject("uid", uid)  # type: ignore[attr-defined]
        return out.decision.reason.value

    def batch(self, frm: int, to: int, changes: list[dict], key: Ed25519PrivateKey | None = None,
              tenant: str = "t1") -> bytes:
        return self.cloud.signed(key or self.key, {"v": 1, "tenant": tenant, "kind": "changes",
                                                   "from_version": frm, "to_version": to,
                                                   "changes": changes})

    def member(self, member_id: str = "m1", uid: str = UID) -> list[dict]:
        return [
            {"entity": "member", "op": "upsert", "id": member_id, "first_name": "Ana"},
            {"entity": "credential", "op": "upsert", "id": f"{member_id}-c",
             "member_id": member_id, "kind": "card",
             "hash": credential_hash(self.hmac_key, "uid", uid)},
            {"entity": "entitlement", "op": "upsert", "id": f"{member_id}-e",
             "member_id": member_id, "kind": "punch_card", "entries_total": 10},
        ]

    def rows(self, ids: range) -> dict[str, list[list]]:
        """Snapshot rows (docs/protocol.md) for members s<i> with card 04<i>."""
        return {
            "members": [[f"s{i}", "Ana", None, False] for i in ids],
            "credentials": [[f"s{i}-c", f"s{i}", "card",
                             credential_hash(self.hmac_key, "uid", f"04{i:012X}"), False]
                            for i in ids],
            "entitlements": [[f"s{i}-e", f"s{i}", "punch_card", None, None, None, 10, ["main"],
                              [{"days": [0, 1, 2, 3, 4, 5, 6], "start": "00:00",
                                "end": "23:59"}], None, None, None, {"other": 1}]
                             for i in ids],
        }

    def version(self) -> int:
        return self.daemon.store.membership_version()


def make_site(tmp_path: Path, write_config: Callable[..., Path], hmac_key: bytes,
              broker: Broker, auto_ack: bool = True, **link_kw: float) -> Site:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    cfg_path = write_config(f"[mqtt]\nhost = \"127.0.0.1\"\nport = {broker.port}\n"
                            "batch_size = 50\n", public_key=public)
    daemon = AgentDaemon(load_config(cfg_path))
    daemon.start()
    cloud = CloudHarness(broker.port, auto_ack=auto_ack)
    link = build_agent_link(daemon, daemon.config.mqtt, ack_timeout_s=1.0,  # type: ignore[arg-type]
                     state_interval_s=3600, max_backoff_s=1.0, **link_kw)
    link.start()
    wait_until(lambda: link.subscribed, what="link connected and subscribed")
    return Site(broker, daemon, link, cloud, key, hmac_key)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture
def site(tmp_path: Path, write_config: Callable[..., Path], hmac_key: bytes,
         broker: Broker) -> Iterator[Site]:
    s = make_site(tmp_path, write_config, hmac_key, broker)
    yield s
    s.link.stop()
    s.cloud.close()
    s.daemon.stop()


def test_membership_batch_then_tap_then_event_acked(site: Site) -> None:
    site.cloud.publish(CHANGES, site.batch(0, 1, site.member()))
    wait_until(lambda: site.version() == 1, what="version 1")
    assert site.tap() == "granted"
    wait_until(lambda: site.daemon.outbox.depth() == 0, what="outbox drained")
    ev = site.cloud.events[("dev1", 1)]
    assert ev["type"] == "access.decision" and ev["data"]["reason"] == "granted"
    assert UID not in json.dumps(ev) and "Ana" not in json.dumps(ev)
    wait_until(lambda: site.cloud.retained_state.get("dev1", {}).get("membership_version") == 1,
               what="state with the new membership version")
    assert site.cloud.retained_state["dev1"]["online"]


def test_forged_replayed_gapped_and_garbage_batches_change_nothing(site: Site) -> None:
    site.cloud.publish(CHANGES, site.batch(0, 1, site.member()))
    wait_until(lambda: site.version() == 1)
    bad: list[bytes] = [
        site.batch(1, 2, site.member("m2", "04000000000002"), key=Ed25519PrivateKey.generate()),
        site.batch(0, 1, site.member("m3", "04000000000003")),  # replay of an old version
        site.batch(1, 2, site.member("m4", "04000000000004"), tenant="t2"),
        json.dumps({"v": 1, "payload": "e30=", "sig": ""}).encode(),
        json.dumps({"v": 1, "tenant": "t1", "kind": "changes"}).encode(),  # unsigned
        b"\x00\xff garbage",
        b"{" * 100_000,
        b"x" * (9 * 1024 * 1024),  # oversized
        site.batch(1, 2, [{"entity": "member", "op": "upsert", "id": "m5", "shoe": 44}]),
        site.cloud.signed(site.key, {"v": 1, "tenant": "t1", "kind": "snapshot"}),
        site.cloud.signed(site.key, {"v": 1, "tenant": "t1", "kind": "snapshot", "version": 9,
                                     "snapshot_id": "x", "chunk": 0, "chunks": 1,
                                     "members": [["m9", "Eva", "yesterday", False]]}),
    ]
    for payload in bad:
        site.cloud.publish(CHANGES, payload)
    # a batch past a gap makes the agent ask for what it missed
    site.cloud.publish(CHANGES, site.batch(5, 6, site.member("m6", "04000000000006")))
    site.cloud.wait_for(lambda t, p: t.endswith("/members/request")
                                 and json.loads(p)["since_version"] == 1)
    wait_until(lambda: site.link.stats["membership_rejected"] >= 10, what="rejections")
    assert site.version() == 1
    members = {r[0] for r in site.daemon.store.conn.execute("SELECT id FROM members")}
    assert members == {"m1"}
    # and the agent still decides and still applies good data
    assert site.tap() == "granted"
    site.cloud.publish(CHANGES, site.batch(1, 2, site.member("m2", "04000000000002")))
    wait_until(lambda: site.version() == 2)
    assert site.tap("04000000000002") == "granted"


def test_snapshot_chunks_swap_in_atomically(site: Site) -> None:
    site.cloud.publish(CHANGES, site.batch(0, 1, site.member("old", "04000000000099")))
    wait_until(lambda: site.version() == 1)
    snap = str(uuid.uuid4())
    chunks = [site.rows(range(i, min(i + 7, 30))) for i in range(0, 30, 7)]
    payloads = [site.cloud.signed(site.key, {"v": 1, "tenant": "t1", "kind": "snapshot",
                                             "snapshot_id": snap, "version": 40, "chunk": i,
                                             "chunks": len(chunks), **c})
                for i, c in enumerate(chunks)]
    for p in payloads[:-1]:
        site.cloud.publish(SYNC, p)
    site.cloud.publish(SYNC, payloads[0])  # a duplicate chunk is harmless
    wait_until(lambda: site.daemon.store.conn.execute(
        "SELECT COUNT(*) FROM snapshot_staging").fetchone()[0] == len(chunks) - 1)
    # while it is incomplete, the old data still decides
    assert site.version() == 1
    assert site.tap("04000000000099") == "granted"
    assert site.tap(f"04{3:012X}") == "unknown_credential"
    site.cloud.publish(SYNC, payloads[-1])
    wait_until(lambda: site.version() == 40, what="snapshot applied")
    assert site.tap(f"04{3:012X}") == "granted"
    assert site.tap("04000000000099", reader="sauna") == "unknown_credential"
    n = site.daemon.store.conn.execute("SELECT COUNT(*) FROM credentials").fetchone()[0]
    assert n == 30
    # a second snapshot works too (index names do not collide)
    snap2 = str(uuid.uuid4())
    site.cloud.publish(SYNC, site.cloud.signed(site.key, {
        "v": 1, "tenant": "t1", "kind": "snapshot", "snapshot_id": snap2, "version": 41,
        "chunk": 0, "chunks": 1, **site.rows(range(77, 78))}))
    wait_until(lambda: site.version() == 41)
    assert site.tap(f"04{77:012X}") == "granted"
    assert site.tap(f"04{3:012X}", reader="sauna") == "unknown_credential"


def test_commands_open_reload_state_and_bad_ones(site: Site) -> None:
    gate = site.daemon.gates["g1"]
    before = len(gate.pulses)  # type: ignore[attr-defined]

    def result_for(request_id: str | None, name: str) -> dict:
        _, payload = site.cloud.wait_for(
            lambda t, p: t.endswith("/cmd-result") and json.loads(p)["request_id"] == request_id
            and json.loads(p)["name"] == name)
        return json.loads(payload)

    site.cloud.publish("es/v1/t1/dev1/cmd/open",
                       json.dumps({"v": 1, "request_id": "r1",
                                   "expires_at": expires_soon(), "args": {"gate": "g1"}}))
    res = result_for("r1", "open")
    assert res["ok"] and res["result"]["pulsed"]
    assert len(gate.pulses) == before + 1  # type: ignore[attr-defined]
    site.cloud.publish("es/v1/t1/dev1/cmd/open",
                       json.dumps({"v": 1, "request_id": "r2",
                                   "expires_at": expires_soon(), "args": {"gate": "nope"}}))
    assert "no gate 'nope'" in result_for("r2", "open")["error"]
    site.cloud.publish("es/v1/t1/dev1/cmd/self-destruct",
                       json.dumps({"v": 1, "request_id": "r3", "expires_at": expires_soon()}))
    assert "unknown command" in result_for("r3", "self-destruct")["error"]
    site.cloud.publish("es/v1/t1/dev1/cmd/open", b"\xff\xfe")
    assert result_for(None, "open")["error"] == "command is not JSON"
    site.cloud.publish("es/v1/t1/dev1/cmd/open", json.dumps({"v": 1, "request_id": "r4",
                                                             "expires_at": expires_soon(),
                                                             "args": {"gate": 5}}))
    assert "invalid command" in result_for("r4", "open")["error"]
    site.cloud.publish("es/v1/t1/dev1/cmd/reload", json.dumps({"v": 1, "request_id": "r5",
                                                               "expires_at": expires_soon()}))
    assert result_for("r5", "reload")["result"]["reloaded"]
    assert site.tap() == "unknown_credential"  # still deciding with the reloaded readers
    site.cloud.publish("es/v1/t1/dev1/cmd/resend-state", json.dumps({"v": 1, "request_id": "r6",
                                                                     "expires_at": expires_soon()}))
    assert result_for("r6", "resend-state")["ok"]
    # stale or without an expiry: refused, the gate does not move
    site.cloud.publish("es/v1/t1/dev1/cmd/open", json.dumps({"v": 1, "request_id": "r7",
                                                             "expires_at": expires_soon(-1),
                                                             "args": {"gate": "g1"}}))
    assert result_for("r7", "open")["error"] == "expired"
    site.cloud.publish("es/v1/t1/dev1/cmd/open", json.dumps({"v": 1, "request_id": "r8",
                                                             "args": {"gate": "g1"}}))
    assert "expires_at: Field required" in result_for("r8", "open")["error"]
    assert len(gate.pulses) == before + 1  # type: ignore[attr-defined]
    wait_until(lambda: ("dev1", 1) in site.cloud.events)
    assert site.cloud.events[("dev1", 1)]["type"] == "access.remote_open"


def test_broken_config_reload_is_refused_and_keeps_running(site: Site) -> None:
    path = Path(site.daemon.config.source)
    path.write_text(path.read_text().replace('direction = "out"', 'direction = "up"'))
    site.cloud.publish("es/v1/t1/dev1/cmd/reload", json.dumps({"v": 1, "request_id": "r1",
                                                               "expires_at": expires_soon()}))
    _, payload = site.cloud.wait_for(lambda t, p: t.endswith("/cmd-result"))
    res = json.loads(payload)
    assert not res["ok"] and "readers[1].direction" in res["error"]
    assert site.tap() == "unknown_credential"


def test_no_ack_means_resend_and_acks_drain(tmp_path: Path, write_config: Callable[..., Path],
                                            hmac_key: bytes, broker: Broker) -> None:
    s = make_site(tmp_path, write_config, hmac_key, broker, auto_ack=False)
    try:
        for i in range(120):
            s.tap(f"04{i:012X}")
        wait_until(lambda: len(s.cloud.events) == 120, what="all events published")
        wait_until(lambda: s.link.stats["resends"] >= 1, what="a resend after the ack timeout")
        assert s.daemon.outbox.depth() == 120  # nothing leaves without an ack
        s.cloud.ack("dev1", 70)
        wait_until(lambda: s.daemon.outbox.depth() == 50)
        s.cloud.ack("dev1", 999)  # beyond anything sent: ignored
        s.cloud.ack("dev1", 10)  # backwards: ignored
        s.cloud.ack("dev1", 120)
        wait_until(lambda: s.daemon.outbox.depth() == 0)
    finally:
        s.link.stop()
        s.cloud.close()
        s.daemon.stop()


def test_agent_without_broker_keeps_deciding_then_delivers(
    tmp_path: Path, write_config: Callable[..., Path], hmac_key: bytes
) -> None:
    broker = Broker(tmp_path / "late")  # port reserved, not started yet
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    cfg = write_config(f"[mqtt]\nport = {broker.port}\n", public_key=public)
    daemon = AgentDaemon(load_config(cfg))
    daemon.start()
    link = build_agent_link(daemon, daemon.config.mqtt, max_backoff_s=0.5)  # type: ignore[arg-type]
    link.start()
    try:
        for i in range(30):
            daemon.readers["entry"].inject("uid", f"04{i:012X}")  # type: ignore[attr-defined]
        assert daemon.outbox.depth() == 30 and not link.connected
        broker.start()
        cloud = CloudHarness(broker.port)
        wait_until(lambda: daemon.outbox.depth() == 0, timeout=20, what="drain after broker up")
        assert sorted(s for _, s in cloud.events) == list(range(1, 31))
        cloud.close()
    finally:
        link.stop()
        daemon.stop()
        broker.stop()


VERSION = "es/v1/t1/members/version"
REQUEST = "es/v1/t1/dev1/members/request"


def test_behind_the_advertised_version_the_agent_asks_again_with_backoff(
        tmp_path: Path, write_config: Callable[..., Path], hmac_key: bytes,
        broker: Broker) -> None:
    """Issue 14 item 3: requests that nobody answers (lost) are asked again, ever less
    often, until the agent holds the advertised version; then it stops asking."""
    site = make_site(tmp_path, write_config, hmac_key, broker, catch_up_first_s=0.4,
                     catch_up_max_s=1.6)
    try:
        asked: list[float] = []
        site.cloud.client.message_callback_add(
            REQUEST, lambda *_a: asked.append(time.monotonic()))
        advert = {"v": 1, "tenant": "t1", "kind": "version", "version": 3}
        # forged, wrong tenant, garbage: not believed
        site.cloud.publish(VERSION, site.cloud.signed(Ed25519PrivateKey.generate(), advert))
        site.cloud.publish(VERSION, site.cloud.signed(site.key, {**advert, "tenant": "t2"}))
        site.cloud.publish(VERSION, b"{not json")
        time.sleep(1.0)
        assert site.link.advertised is None and asked == []
        site.cloud.client.publish(VERSION, site.cloud.signed(site.key, advert), qos=1,
                                  retain=True).wait_for_publish(5)
        wait_until(lambda: len(asked) >= 5, timeout=15, what="five requests, none answered")
        gaps = [b - a for a, b in itertools.pairwise(asked)]
        assert gaps[-1] > gaps[0] * 1.5, f"no backoff: {gaps}"
        assert max(gaps) < 1.6 + 0.5, f"backoff beyond its cap: {gaps}"
        site.cloud.publish(SYNC, site.batch(0, 3, site.member("m1")))
        wait_until(lambda: site.version() == 3, what="caught up")
        n = len(asked)
        time.sleep(2.5)
        assert len(asked) == n, "still asking after catching up"
        assert site.link.stats["catch_up_requests"] >= 5
    finally:
        site.cloud.client.publish(VERSION, b"", qos=1, retain=True).wait_for_publish(5)
        site.link.stop()
        site.cloud.close()
        site.daemon.stop()
