"""Phone chains with signed heads, as a terminal signs its own (contracts/punch_chain.py):
each phone punch is followed by a head signed with a key derived from the tenant's
signing key. A chain rewritten in the database with every hash recomputed still fails
the audit, because the forger cannot sign the new heads; over HTTP the bridge signs
with the tenant key from its key files and its chain API checks with it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from typer.testing import CliRunner

from cloud_bridge.api.app import create_app
from cloud_bridge.api.deps import ApiContext
from cloud_bridge.attendance.chain_audit import audit_chain
from cloud_bridge.attendance.phone_enrolment import phone_user
from cloud_bridge.attendance.phone_punch import (
    PhonePunch,
    phone_device,
    phone_head_key,
    record_phone_punch,
)
from cloud_bridge.change_feed import ChangeFeed
from cloud_bridge.cli import app as cli_app
from cloud_bridge.db_schema import events, read_tx, write_tx
from cloud_bridge.tenant_keys import TenantKeyStore
from contracts.punch_chain import GENESIS, HEAD_EVENT, PUNCH_EVENT, punch_hash
from contracts.punch_types import PunchType
from tests.attendance.test_phone_punch import _employee, _enrol
from tests.bridge.conftest import API_TOKEN, FakePublisher

DAY = datetime(2026, 11, 10, 6, tzinfo=UTC)


def _three_signed(engine: Engine, tenant: str, key: Ed25519PrivateKey) -> str:
    _employee(engine, tenant)
    session = _enrol(engine, tenant)
    for i, kind in enumerate((PunchType.ARRIVAL, PunchType.BREAK_START, PunchType.BREAK_END)):
        at = DAY + timedelta(hours=i)
        with write_tx(engine) as conn:
            record_phone_punch(conn, phone_user(conn, session),
                               PhonePunch(str(uuid.uuid4()), kind, at, at, None), at, key)
    return phone_device("e1")


def test_the_head_key_is_derived_and_apart_from_the_tenant_key() -> None:
    tenant_key = Ed25519PrivateKey.generate()
    one, two = phone_head_key(tenant_key), phone_head_key(tenant_key)
    assert one.public_key().public_bytes_raw() == two.public_key().public_bytes_raw()
    assert one.public_key().public_bytes_raw() != tenant_key.public_key().public_bytes_raw()
    other = phone_head_key(Ed25519PrivateKey.generate())
    assert other.public_key().public_bytes_raw() != one.public_key().public_bytes_raw()


def test_each_phone_punch_is_followed_by_its_signed_head(engine: Engine, tenant: str) -> None:
    key = phone_head_key(Ed25519PrivateKey.generate())
    device = _three_signed(engine, tenant, key)
    with read_tx(engine) as conn:
        kinds = [r.type for r in conn.execute(select(events.c.type).where(
            events.c.tenant == tenant, events.c.device == device).order_by(events.c.seq))]
        report = audit_chain(conn, tenant, device, key.public_key())
    assert kinds == [PUNCH_EVENT, HEAD_EVENT] * 3
    assert report.ok and report.punches == 3 and report.signed_heads == 3
    assert report.signatures_checked and report.unsigned_tail == 0


def _rewrite_second_punch(engine: Engine, tenant: str, device: str) -> None:
    """A forger with the database: the break starts an hour later, and every hash after
    it (punches and heads) is recomputed so that the chain hangs together again."""
    with write_tx(engine) as conn:
        rows = conn.execute(select(events.c.seq, events.c.ts, events.c.type, events.c.data)
                            .where(events.c.tenant == tenant, events.c.device == device)
                            .order_by(events.c.seq)).all()
        prev = GENESIS
        for r in rows:
            data = dict(r.data)
            ts = r.ts
            if r.type == PUNCH_EVENT:
                if r.seq == 3:
                    ts = "2026-11-10T08:00:00.000Z"
                data["prev_hash"] = prev
                data["hash"] = prev = punch_hash(prev, {"device": device, "seq": r.seq,
                                                        "ts": ts, "type": r.type,
                                                        "data": data})
            else:
                data["hash"] = prev  # the head names the new hash; its signature is old
            conn.execute(update(events).where(events.c.tenant == tenant,
                                              events.c.device == device,
                                              events.c.seq == r.seq).values(ts=ts, data=data))


def test_a_rewritten_phone_chain_fails_on_its_signature(engine: Engine, tenant: str) -> None:
    key = phone_head_key(Ed25519PrivateKey.generate())
    device = _three_signed(engine, tenant, key)
    _rewrite_second_punch(engine, tenant, device)
    with read_tx(engine) as conn:
        unchecked = audit_chain(conn, tenant, device)
        checked = audit_chain(conn, tenant, device, key.public_key())
    # the hashes alone are consistent again: only the signature shows the rewrite
    assert unchecked.ok and not unchecked.signatures_checked
    assert not checked.ok and checked.break_seq == 4
    assert "forged signature" in (checked.first_break or "")


def test_the_bridge_signs_phone_heads_with_the_tenant_key(engine: Engine, tenant: str,
                                                          keys_dir: Path) -> None:
    keys = TenantKeyStore(keys_dir)
    app = create_app(ApiContext(engine, keys, ChangeFeed(keys, FakePublisher(), "es/v1"),
                                FakePublisher(), "es/v1", API_TOKEN))
    _employee(engine, tenant)
    session = _enrol(engine, tenant)
    now = datetime.now(UTC).isoformat()
    with TestClient(app) as client:
        made = client.post("/api/v1/phone/punch", headers={"authorization": f"Bearer {session}"},
                           json={"id": str(uuid.uuid4()), "type": "arrival", "at": now,
                                 "sent_at": now})
        assert made.status_code == 201, made.text
        report = client.get(f"/api/v1/tenants/{tenant}/attendance/chain/{phone_device('e1')}",
                            headers={"authorization": f"Bearer {API_TOKEN}"})
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["ok"] and body["signed_heads"] == 1 and body["signatures_checked"]
    assert body["key_source"] == "given" and body["unsigned_tail"] == 0
    own = phone_head_key(keys.get(tenant).signing_key).public_key()
    with read_tx(engine) as conn:
        assert audit_chain(conn, tenant, phone_device("e1"), own).ok
        assert not audit_chain(conn, tenant, phone_device("e1"),
                               Ed25519PrivateKey.generate().public_key()).ok


def test_verify_chain_checks_phone_heads_with_the_key_files(engine: Engine, db_url: str,
                                                            tenant: str,
                                                            keys_dir: Path) -> None:
    key = phone_head_key(TenantKeyStore(keys_dir).get(tenant).signing_key)
    device = _three_signed(engine, tenant, key)
    args = ["attendance", "verify-chain", "--tenant", tenant, "--db", db_url,
            "--keys-dir", str(keys_dir)]
    ok = CliRunner().invoke(cli_app, args)
    assert ok.exit_code == 0, ok.output
    assert (f"{tenant}/{device}: chain intact: 3 punches, 3 signed heads, signatures "
            "verified (key given)") in ok.output
    _rewrite_second_punch(engine, tenant, device)
    broken = CliRunner().invoke(cli_app, args)
    assert broken.exit_code == 1 and "forged signature" in broken.output
    # without the key files the rewrite is not seen: the hashes agree again
    assert CliRunner().invoke(cli_app, args[:-2]).exit_code == 0
