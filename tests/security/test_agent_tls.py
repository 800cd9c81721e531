"""End to end through the TLS fleet broker: an agent with its device certificate (CN
t1/dev1, [mqtt] tls_ca/tls_cert/tls_key) connects, receives a signed membership batch,
decides a tap, and its event arrives at the bridge identity, which acks it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent.config import load_config
from agent.daemon import AgentDaemon
from agent.sync_link import build_agent_link
from contracts.credential_hash import credential_hash
from contracts.signed_envelope import sign_payload
from tests.cloud_harness import wait_until
from tests.security.fleet_broker import Client, FleetBroker

UID = "04A1B2C3D4E5F6"


def test_agent_with_device_certificate_delivers_events(
        tmp_path: Path, write_config: Callable[..., Path], hmac_key: bytes) -> None:
    fleet = FleetBroker(tmp_path / "fleet").setup({"t1": ("b1",)}).start()
    daemon = link = bridge = None
    try:
        device = fleet.identity("t1", "dev1")
        key = Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        cfg = write_config(
            f'[mqtt]\nhost = "127.0.0.1"\nport = {fleet.ports["t1"]}\n'
            f'tls_ca = "{fleet.ca_file("t1")}"\ntls_cert = "{device.cert}"\n'
            f'tls_key = "{device.key}"\n', public_key=public)
        bridge = Client(fleet, "t1", fleet.identity("t1", "b1", bridge=True))
        assert bridge.subscribe("$share/bridge/es/v1/+/+/events") == 1
        assert bridge.subscribe("es/v1/+/+/members/request") == 1
        daemon = AgentDaemon(load_config(cfg))
        daemon.start()
        link = build_agent_link(daemon, daemon.config.mqtt, ack_timeout_s=1.0,  # type: ignore[arg-type]
                         state_interval_s=3600, max_backoff_s=1.0)
        link.start()
        wait_until(lambda: link.subscribed, what="agent connected over TLS and subscribed")
        wait_until(lambda: bridge.received("es/v1/t1/dev1/members/request"),
                   what="membership request from the agent")
        changes = [
            {"entity": "member", "op": "upsert", "id": "m1", "first_name": "Ana"},
            {"entity": "credential", "op": "upsert", "id": "c1", "member_id": "m1",
             "kind": "card", "hash": credential_hash(hmac_key, "uid", UID)},
            {"entity": "entitlement", "op": "upsert", "id": "e1", "member_id": "m1",
             "kind": "punch_card", "entries_total": 5},
        ]
        batch = sign_payload(key, {"v": 1, "tenant": "t1", "kind": "changes",
                                   "from_version": 0, "to_version": 1, "changes": changes})
        bridge.publish("es/v1/t1/members/changes", batch)
        wait_until(lambda: daemon.store.membership_version() == 1, what="batch applied")
        out = daemon.readers["entry"].inject("uid", UID)  # type: ignore[attr-defined]
        assert out.granted
        wait_until(lambda: bridge.received("es/v1/t1/dev1/events"), what="event at bridge")
        events = json.loads(bridge.received("es/v1/t1/dev1/events")[0])["events"]
        assert events[0]["type"] == "access.decision" and events[0]["data"]["granted"]
        bridge.publish("es/v1/t1/dev1/ack", json.dumps({"v": 1, "acked_seq": 1}).encode())
        wait_until(lambda: daemon.outbox.depth() == 0, what="outbox drained after ack")
    finally:
        if link:
            link.stop()
        if bridge:
            bridge.close()
        if daemon:
            daemon.stop()
        fleet.stop()
