"""members/request: the missing change batches in version order, or a snapshot when the
device is too far behind or the log was pruned; checked against the agent's own models
and applied to a real agent store."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from agent.store.local_store import LocalStore
from agent.store.sync_store import MembershipData
from cloud_bridge import change_log, membership_ops
from cloud_bridge.api_models import CredentialIn, EntitlementIn, MemberIn
from cloud_bridge.db_schema import write_tx
from cloud_bridge.member_sync import Answer, MemberSync
from cloud_bridge.service import Bridge
from cloud_bridge.tenant_keys import TenantKeys, TenantKeyStore
from contracts.messages import SIGNED_PAYLOAD, ChangeBatch, SnapshotChunk
from contracts.signed_envelope import verify_envelope
from sync.membership_applier import MembershipApplier, Outcome
from tests.bridge.conftest import FakePublisher
from tests.bridge.device_emulator import DeviceEmulator


def fill(engine: Engine, keys: TenantKeys, members: int, start: int = 0) -> None:
    """One version per member (with a card and a punch card in the same entry)."""
    for i in range(start, start + members):
        with write_tx(engine) as conn:
            _, recs = membership_ops.create_member(
                conn, keys.tenant, MemberIn(id=f"m{i}", first_name=f"N{i}",
                                            pin="1234" if i == 0 else None))
            _, r2 = membership_ops.issue_credential(conn, keys.tenant, keys.hmac_key, CredentialIn(
                id=f"c{i}", member_id=f"m{i}", kind="card", uid=f"{i:08X}"))
            _, r3 = membership_ops.create_entitlement(conn, keys.tenant, EntitlementIn(
                id=f"e{i}", member_id=f"m{i}", kind="punch_card", entries_total=10,
                windows=[{"days": [0, 6], "start": "20:00", "end": "02:00"}]))
            change_log.append(conn, keys.tenant, recs + r2 + r3)


def decode(keys: TenantKeys, messages: list[bytes]) -> list[Any]:
    return [SIGNED_PAYLOAD.validate_json(verify_envelope(m, keys.public_key)) for m in messages]


def sync_for(engine: Engine, keys_dir: Path, published: FakePublisher, **kw: Any) -> MemberSync:
    return MemberSync(engine, TenantKeyStore(keys_dir), published, "es/v1", **kw)


def test_a_device_a_few_versions_behind_gets_the_missing_batches(
        engine: Engine, keys_dir: Path, tenant_keys: TenantKeys, published: FakePublisher
) -> None:
    fill(engine, tenant_keys, 10)
    ms = sync_for(engine, keys_dir, published)
    res = ms.handle(tenant_keys.tenant, "gate-1", _req(4))
    assert res.answer is Answer.CHANGES and res.version == 10
    topics = {t for t, _ in published.messages}
    assert topics == {f"es/v1/{tenant_keys.tenant}/gate-1/members/sync"}
    batches = decode(tenant_keys, [p for _, p in published.messages])
    assert all(isinstance(b, ChangeBatch) for b in batches)
    assert batches[0].from_version == 4 and batches[-1].to_version == 10
    assert all(a.to_version == b.from_version for a, b in itertools.pairwise(batches))
    assert sum(len(b.changes) for b in batches) == 6 * 3
    assert ms.handle(tenant_keys.tenant, "gate-1", _req(10)).answer is Answer.UP_TO_DATE
    assert ms.handle(tenant_keys.tenant, "gate-1", _req(11)).answer is Answer.AHEAD


def test_big_catch_ups_are_split_into_batches_that_chain(
        engine: Engine, keys_dir: Path, tenant_keys: TenantKeys, published: FakePublisher,
        monkeypatch: Any) -> None:
    monkeypatch.setattr("cloud_bridge.member_sync.MAX_BATCH_CHANGES", 7)
    fill(engine, tenant_keys, 10)
    sync_for(engine, keys_dir, published).handle(tenant_keys.tenant, "gate-1", _req(0))
    batches = decode(tenant_keys, [p for _, p in published.messages])
    assert len(batches) == 5  # 3 records per version, at most 7 per batch: 2 versions each
    assert [(b.from_version, b.to_version) for b in batches] == [
        (0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]


def test_far_behind_or_pruned_gets_a_snapshot(
        engine: Engine, keys_dir: Path, tenant_keys: TenantKeys, published: FakePublisher
) -> None:
    fill(engine, tenant_keys, 25)
    ms = sync_for(engine, keys_dir, published, max_lag=10, chunk_rows=20)
    res = ms.handle(tenant_keys.tenant, "gate-1", _req(3))  # 22 behind > 10
    assert res.answer is Answer.SNAPSHOT and res.version == 25
    chunks = decode(tenant_keys, [p for _, p in published.messages])
    assert all(isinstance(c, SnapshotChunk) for c in chunks)
    assert len(chunks) == chunks[0].chunks == 4  # 25 + 25 + 25 rows + 1 PIN = 76 -> 4 of 20
    assert [c.chunk for c in chunks] == [0, 1, 2, 3]
    assert len({c.snapshot_id for c in chunks}) == 1
    assert sorted(r[0] for c in chunks for r in c.members) == sorted(f"m{i}" for i in range(25))
    assert sum(len(c.credentials) for c in chunks) == 25
    ents = [r for c in chunks for r in c.entitlements]
    assert len(ents) == 25 and ents[0][8][0].start == "20:00"
    assert [p[0] for c in chunks for p in c.pins] == ["m0"]

    published.messages.clear()
    with write_tx(engine) as conn:
        assert change_log.prune(conn, tenant_keys.tenant, keep=5) == 20
    ms = sync_for(engine, keys_dir, published, max_lag=1000, chunk_rows=2000)
    assert ms.handle(tenant_keys.tenant, "gate-1", _req(19)).answer is Answer.SNAPSHOT
    assert ms.handle(tenant_keys.tenant, "gate-1", _req(20)).answer is Answer.CHANGES


def test_answers_apply_on_a_real_agent_store(
        engine: Engine, keys_dir: Path, tenant_keys: TenantKeys, published: FakePublisher,
        tmp_path: Path) -> None:
    """What the bridge sends is what the agent's applier accepts: snapshot, then changes."""
    fill(engine, tenant_keys, 30)
    store = LocalStore(tmp_path / "agent.db")
    applier = MembershipApplier(MembershipData(store), tenant_keys.tenant, tenant_keys.public_key)
    ms = sync_for(engine, keys_dir, published, max_lag=5, chunk_rows=16)
    ms.handle(tenant_keys.tenant, "gate-1", _req(0))
    outcomes = [applier.handle(p).outcome for _, p in published.messages]
    assert outcomes[-1] is Outcome.APPLIED and set(outcomes[:-1]) == {Outcome.STAGED}
    assert store.membership_version() == 30
    fill(engine, tenant_keys, 3, start=30)
    published.messages.clear()
    ms.handle(tenant_keys.tenant, "gate-1", _req(30))
    assert [applier.handle(p).outcome for _, p in published.messages] == [Outcome.APPLIED]
    assert store.membership_version() == 33
    with store.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM members").fetchone()[0] == 33
        assert conn.execute("SELECT count(*) FROM credentials").fetchone()[0] == 33
        assert conn.execute("SELECT count(*) FROM employee_pins").fetchone()[0] == 1
    store.close()


def test_request_over_mqtt_is_answered_on_the_device_topic(
        bridge: Bridge, engine: Engine, broker_port: int, tenant_keys: TenantKeys) -> None:
    fill(engine, tenant_keys, 3)
    dev = DeviceEmulator(broker_port, tenant_keys.tenant, "gate-7")
    dev.publish(dev.topics.members_request, json.dumps({"v": 1, "since_version": 1}))
    batches = decode(tenant_keys, [dev.next_down("/gate-7/members/sync")])
    assert (batches[0].from_version, batches[0].to_version) == (1, 3)
    dev.close()


def _req(since: int) -> Any:
    from cloud_bridge.wire import MembersRequest

    return MembersRequest(v=1, since_version=since)
