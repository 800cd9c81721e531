"""Acceptance: chain verification over what the bridge stored finds a tampered, a
deleted and a reordered record (and a forged head, a rewritten chain, a deleted tail),
each at its first broken link; the CLI says the same."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Connection, Engine, delete, select, update
from typer.testing import CliRunner

from cloud_bridge.attendance.chain_audit import audit_chain, set_device_key
from cloud_bridge.cli import app
from cloud_bridge.db_schema import events, read_tx, write_tx
from contracts.punch_chain import PUNCH_EVENT, punch_hash
from tests.attendance.conftest import ingest
from tests.attendance.punch_plan import chain_events

DEVICE = "clock-1"
KEY = Ed25519PrivateKey.generate()
PUBLIC_B64 = base64.b64encode(KEY.public_key().public_bytes(Encoding.Raw,
                                                            PublicFormat.Raw)).decode()


def punches(n: int) -> list[tuple[str, datetime, str]]:
    t0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
    return [(f"e{i % 4}", t0 + timedelta(minutes=7 * i), ("arrival", "departure")[i // 4 % 2])
            for i in range(n)]


def stored(engine: Engine, tenant: str) -> list[dict[str, Any]]:
    events_ = chain_events(tenant, DEVICE, punches(24), KEY, head_every=5)
    ingest(engine, events_)
    with write_tx(engine) as conn:
        set_device_key(conn, tenant, DEVICE, PUBLIC_B64, "admin:test")
    return events_


def row(conn: Connection, tenant: str, seq: int) -> Any:
    return conn.execute(select(events).where(events.c.tenant == tenant,
                                             events.c.device == DEVICE,
                                             events.c.seq == seq)).mappings().one()


def set_row(conn: Connection, tenant: str, seq: int, **values: Any) -> None:
    conn.execute(update(events).where(events.c.tenant == tenant, events.c.device == DEVICE,
                                      events.c.seq == seq).values(**values))


def punch_seqs(evs: list[dict[str, Any]]) -> list[int]:
    return [e["seq"] for e in evs if e["type"] == PUNCH_EVENT]


def audit(engine: Engine, tenant: str) -> Any:
    with read_tx(engine) as conn:
        return audit_chain(conn, tenant, DEVICE)


def test_intact_chain_verifies_with_signatures(engine: Engine, tenant: str) -> None:
    evs = stored(engine, tenant)
    r = audit(engine, tenant)
    assert r.ok and r.punches == 24 and r.signed_heads == 5 and r.signatures_checked
    assert r.events == len(evs) and r.unsigned_tail == 0 and r.acked_seq == len(evs)


def tampered(conn: Connection, tenant: str, evs: list[dict[str, Any]]) -> int:
    seq = punch_seqs(evs)[9]
    data = dict(row(conn, tenant, seq)["data"])
    data["type"] = "departure" if data["type"] == "arrival" else "arrival"
    set_row(conn, tenant, seq, data=data)
    return seq


def deleted(conn: Connection, tenant: str, evs: list[dict[str, Any]]) -> int:
    seq = punch_seqs(evs)[6]
    conn.execute(delete(events).where(events.c.tenant == tenant, events.c.device == DEVICE,
                                      events.c.seq == seq))
    return seq


def reordered(conn: Connection, tenant: str, evs: list[dict[str, Any]]) -> int:
    """Two punches trade places (time and content), each keeping its seq."""
    a, b = punch_seqs(evs)[3], punch_seqs(evs)[4]
    ra, rb = row(conn, tenant, a), row(conn, tenant, b)
    # event ids are unique per tenant: a's id is freed before b takes it
    set_row(conn, tenant, a, id="00000000-0000-0000-0000-000000000000")
    set_row(conn, tenant, b, ts=ra["ts"], data=ra["data"], id=ra["id"])
    set_row(conn, tenant, a, ts=rb["ts"], data=rb["data"], id=rb["id"])
    return a


def moved_earlier(conn: Connection, tenant: str, evs: list[dict[str, Any]]) -> int:
    seq = punch_seqs(evs)[12]
    set_row(conn, tenant, seq, ts="2026-11-02T05:00:00.000Z")
    return seq


def forged_head(conn: Connection, tenant: str, evs: list[dict[str, Any]]) -> int:
    head = [e for e in evs if e["type"] != PUNCH_EVENT][1]
    data = dict(row(conn, tenant, head["seq"])["data"])
    data["sig"] = base64.b64encode(Ed25519PrivateKey.generate().sign(
        bytes.fromhex(data["hash"]))).decode()
    set_row(conn, tenant, head["seq"], data=data)
    return int(head["seq"])


def rewritten(conn: Connection, tenant: str, evs: list[dict[str, Any]]) -> int:
    """A punch edited and every later hash recomputed: only the signed head betrays it."""
    seqs = punch_seqs(evs)
    target = seqs[15]
    prev = row(conn, tenant, target)["data"]["prev_hash"]
    for seq in seqs[15:]:
        r = row(conn, tenant, seq)
        data = {**r["data"], "prev_hash": prev}
        if seq == target:
            data["type"] = "break_start"
        ev = {"device": DEVICE, "seq": seq, "ts": r["ts"], "type": PUNCH_EVENT, "data": data}
        prev = data["hash"] = punch_hash(prev, ev)
        set_row(conn, tenant, seq, data=data)
    # the first signed head after the edit names a hash no longer in the chain
    return next(e["seq"] for e in evs if e["type"] != PUNCH_EVENT and e["seq"] > target)


def tail_deleted(conn: Connection, tenant: str, evs: list[dict[str, Any]]) -> int:
    conn.execute(delete(events).where(events.c.tenant == tenant, events.c.device == DEVICE,
                                      events.c.seq > len(evs) - 3))
    return len(evs) - 2


@pytest.mark.parametrize(("tamper", "words"), [
    (tampered, "altered after it was recorded"),
    (deleted, "a record was deleted"),
    (reordered, "does not follow the previous punch"),
    (moved_earlier, "altered after it was recorded"),
    (forged_head, "forged signature"),
    (rewritten, "not in the chain"),
    (tail_deleted, "no longer stored"),
])
def test_each_kind_of_tampering_is_found_at_its_first_broken_link(
        engine: Engine, tenant: str, tamper: Callable[..., int], words: str) -> None:
    evs = stored(engine, tenant)
    with write_tx(engine) as conn:
        where = tamper(conn, tenant, evs)
    r = audit(engine, tenant)
    assert not r.ok
    assert r.break_seq == where, r.first_break
    assert words in (r.first_break or "")


def test_cli_verify_chain(engine: Engine, db_url: str, tenant: str) -> None:
    evs = stored(engine, tenant)
    runner = CliRunner()
    args = ["attendance", "verify-chain", "--tenant", tenant, "--device", DEVICE,
            "--db", db_url]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert "chain intact: 24 punches, 5 signed heads, signatures verified" in ok.output
    with write_tx(engine) as conn:
        where = deleted(conn, tenant, evs)
    broken = runner.invoke(app, [*args, "--json"])
    assert broken.exit_code == 1
    body = json.loads(broken.output)
    assert body["ok"] is False and body["break_seq"] == where
    assert "deleted" in body["first_break"]
    # every time clock of the tenant when no device is named
    all_devices = runner.invoke(app, ["attendance", "verify-chain", "--tenant", tenant,
                                      "--db", db_url])
    assert all_devices.exit_code == 1 and f"BROKEN at seq {where}" in all_devices.output


def test_without_a_registered_key_signatures_are_reported_unchecked(
        engine: Engine, tenant: str) -> None:
    ingest(engine, chain_events(tenant, DEVICE, punches(7), KEY, head_every=5))
    r = audit(engine, tenant)
    assert r.ok and not r.signatures_checked
    assert "signatures NOT checked" in r.summary()
