"""Ingest over a real broker: exactly-once storage, the contiguous ack, rejection of
garbage without the bridge stopping, entries consumed at gates reaching the change log."""

from __future__ import annotations

import json
import time

from sqlalchemy import Engine, func, select

from cloud_bridge.db_schema import device_cursor, events
from cloud_bridge.service import Bridge
from cloud_bridge.tenant_keys import TenantKeys
from contracts.messages import ChangeBatch
from contracts.signed_envelope import open_envelope
from tests.bridge.device_emulator import DeviceEmulator, batch_payload, make_event


def stored_seqs(engine: Engine, tenant: str, device: str) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(select(events.c.seq).where(
            events.c.tenant == tenant, events.c.device == device).order_by(events.c.seq))
            .scalars())


def test_duplicates_are_stored_once_and_acked_again(bridge: Bridge, engine: Engine,
                                                    broker_port: int, tenant: str) -> None:
    dev = DeviceEmulator(broker_port, tenant, "gate-01")
    dev.send(1, 50)
    assert dev.wait_ack(50)
    dev.send(1, 50)  # the device did not see the ack and resends: stored once, acked again
    dev.send(41, 60)  # overlapping resend
    assert dev.wait_ack(60)
    assert dev.wait_acks(3)[-1] == 60
    assert stored_seqs(engine, tenant, "gate-01") == list(range(1, 61))
    dev.close()


def test_out_of_order_batches_are_stored_but_only_the_contiguous_prefix_acked(
        bridge: Bridge, engine: Engine, broker_port: int, tenant: str) -> None:
    dev = DeviceEmulator(broker_port, tenant, "gate-02")
    dev.send(11, 20)
    assert dev.wait_acks(1) == [0]  # stored, but 1..10 are missing: nothing to ack
    assert stored_seqs(engine, tenant, "gate-02") == list(range(11, 21))
    dev.send(1, 5)
    assert dev.wait_acks(2)[-1] == 5  # still a gap 6..10
    dev.send(6, 10)
    assert dev.wait_acks(3)[-1] == 20  # gap filled: the ack jumps over what was stored
    with engine.connect() as conn:
        assert conn.execute(select(device_cursor.c.acked_seq).where(
            device_cursor.c.tenant == tenant, device_cursor.c.device == "gate-02")
        ).scalar() == 20
    dev.close()


def test_garbage_is_rejected_and_the_bridge_keeps_running(
        bridge: Bridge, engine: Engine, broker_port: int, tenant: str) -> None:
    dev = DeviceEmulator(broker_port, tenant, "gate-03")
    topic = dev.topics.events
    good = [make_event(tenant, "gate-03", 1)]
    garbage = [
        b"not json at all",
        b"\xff\xfe\x00binary",
        b"[]",
        json.dumps({"v": 2, "tenant": tenant, "device": "gate-03", "events": good}).encode(),
        batch_payload(tenant, "gate-03", []),  # empty batch
        batch_payload("other-tenant", "gate-03", good),  # envelope names another tenant
        batch_payload(tenant, "gate-99", good),  # another device
        batch_payload(tenant, "gate-03", [make_event("other-tenant", "gate-03", 1)]),
        batch_payload(tenant, "gate-03", [make_event(tenant, "gate-03", 1),
                                          make_event(tenant, "gate-03", 3)]),  # not contiguous
        batch_payload(tenant, "gate-03", [make_event(tenant, "gate-03", 0)]),  # seq 0
        # (an invalid event whose seq is known is refused alone: tests/bridge/test_quarantine)
        batch_payload(tenant, "gate-03", [make_event(tenant, "gate-03", s)
                                          for s in range(1, 502)]),  # 501 events
        batch_payload(tenant, "gate-03", [make_event(tenant, "gate-03", 1,
                                                     data={"x": "a" * 300_000})]),  # > 256 KiB
    ]
    for payload in garbage:
        dev.publish(topic, payload)
    dev.publish(dev.topics.state, b"{broken")
    dev.publish(dev.topics.cmd_result, b'{"v": 1}')
    dev.publish(dev.topics.members_request, b'{"v": 1, "since_version": -1}')
    deadline = time.monotonic() + 10
    while bridge.stats["rejected"] < len(garbage) + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bridge.stats["rejected"] == len(garbage) + 3
    assert stored_seqs(engine, tenant, "gate-03") == []
    assert dev.acks == []  # nothing was committed, so nothing is acknowledged
    dev.send(1, 3)  # and the bridge still works
    assert dev.wait_ack(3)
    assert stored_seqs(engine, tenant, "gate-03") == [1, 2, 3]
    dev.close()


def test_entries_consumed_at_a_gate_reach_the_other_devices(
        bridge: Bridge, engine: Engine, broker_port: int, tenant: str,
        tenant_keys: TenantKeys) -> None:
    from cloud_bridge import change_log, membership_ops
    from cloud_bridge.api_models import EntitlementIn, MemberIn
    from cloud_bridge.db_schema import entitlements, write_tx

    with write_tx(engine) as conn:
        _, recs = membership_ops.create_member(conn, tenant, MemberIn(id="m1", first_name="Ana"))
        change_log.append(conn, tenant, recs)
        _, recs = membership_ops.create_entitlement(conn, tenant, EntitlementIn(
            id="e1", member_id="m1", kind="punch_card", entries_total=10))
        change_log.append(conn, tenant, recs)
    other = DeviceEmulator(broker_port, tenant, "gate-b")
    dev = DeviceEmulator(broker_port, tenant, "gate-a")
    consumed = {"gate": "g1", "member": "m1", "entitlement": "e1", "consumed": True,
                "granted": True}
    dev.send(1, 1, type_="access.decision", data=consumed)
    assert dev.wait_ack(1)
    batch = ChangeBatch.model_validate(open_envelope(other.next_down("members/changes"),
                                                     tenant_keys.public_key))
    assert (batch.from_version, batch.to_version) == (2, 3)
    assert batch.changes[0].used_by_device == {"gate-a": 1}  # type: ignore[union-attr]
    dev.send(1, 1, type_="access.decision", data=consumed)  # duplicate: counts once
    dev.send(2, 3, type_="access.decision", data=consumed)
    assert dev.wait_ack(3)
    dev.send(4, 4, type_="access.passage_missed",
             data={"entitlement": "e1", "refunded": True, "member": "m1"})
    assert dev.wait_ack(4)
    time.sleep(0.3)
    with engine.connect() as conn:
        used = conn.execute(select(entitlements.c.used_by_device).where(
            entitlements.c.tenant == tenant, entitlements.c.id == "e1")).scalar()
        versions = conn.execute(select(func.count()).select_from(
            change_log.change_log).where(change_log.change_log.c.tenant == tenant)).scalar()
    assert used == {"gate-a": 2}  # 3 consumed, 1 given back; the duplicate not counted
    assert versions == 5  # member, entitlement, then one per changed count (3, 2)
    dev.close()
    other.close()


def test_state_last_will_and_command_results_are_stored(
        bridge: Bridge, engine: Engine, broker_port: int, tenant: str) -> None:
    from fastapi.testclient import TestClient

    from cloud_bridge.api import create_app

    dev = DeviceEmulator(broker_port, tenant, "pos-1")
    state = {"v": 1, "online": True, "ts": "2026-11-24T19:06:38.195Z", "version": "0.1.0",
             "outbox_depth": 3, "membership_version": 0}
    dev.publish(dev.topics.state, json.dumps(state), retain=True)
    client = TestClient(create_app(bridge.api_context("tok")),
                        headers={"Authorization": "Bearer tok"})
    base = f"/api/v1/tenants/{tenant}"
    deadline = time.monotonic() + 10
    while client.get(f"{base}/devices/pos-1").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    got = client.get(f"{base}/devices/pos-1").json()
    assert got["online"] is True and got["state"]["outbox_depth"] == 3
    dev.publish(dev.topics.state, json.dumps({"v": 1, "online": False}), retain=True)
    while client.get(f"{base}/devices/pos-1").json()["online"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.get(f"{base}/devices/pos-1").json()["state"]["outbox_depth"] == 3

    sent_at = int(time.time() * 1000)
    r = client.post(f"{base}/devices/pos-1/commands",
                    json={"name": "open", "args": {"gate": "turnstile-1"}})
    assert r.status_code == 202
    request_id = r.json()["request_id"]
    cmd = json.loads(dev.next_down("/cmd/open"))
    # a physical action is valid for the default 10 s from when the bridge sent it
    assert sent_at + 10_000 <= cmd["expires_at"] <= int(time.time() * 1000) + 10_000
    assert cmd == {"v": 1, "request_id": request_id, "expires_at": r.json()["expires_at"],
                   "args": {"gate": "turnstile-1", "direction": "in"}}
    pending = client.get(f"{base}/commands/{request_id}").json()
    assert pending["answered"] is False and pending["outcome"] == "pending"
    assert pending["expires_at"] == cmd["expires_at"]
    dev.publish(dev.topics.cmd_result, json.dumps({
        "v": 1, "request_id": request_id, "name": "open", "ok": True,
        "result": {"gate": "turnstile-1", "pulsed": True}}))
    while not client.get(f"{base}/commands/{request_id}").json()["answered"]:
        assert time.monotonic() < deadline + 5
        time.sleep(0.05)
    res = client.get(f"{base}/commands/{request_id}").json()
    assert res["ok"] is True and res["result"] == {"gate": "turnstile-1", "pulsed": True}
    assert res["outcome"] == "ok"
    dev.close()
