"""Printed tickets and vouchers at a gate, through the real agent store: one transaction
holds the decision, the use and both events (docs/vouchers.md)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.access.model import GateContext, SiteRules
from agent.access.service import AccessService
from agent.store.local_store import LocalStore
from contracts.reasons import Reason
from contracts.ticket_events import TicketUsed
from contracts.ticket_token import TicketKind, delegate_issuer, issue_ticket
from tests.store_helpers import GATE_IN, GATE_OUT, LJ, NOW, load, make_service

T0 = int(NOW.timestamp())
SITE = "ljubljana"


@pytest.fixture
def tenant_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def gate(tmp_path: Path, hmac_key: bytes, key: Ed25519PrivateKey, name: str = "a.db",
         rules: SiteRules | None = None, site: str | None = SITE) -> AccessService:
    return make_service(tmp_path / name, hmac_key, rules=rules, repeat_window_s=0,
                        public_key=key.public_key(), site_id=site)


def ticket(key: Ed25519PrivateKey, kind: TicketKind = TicketKind.ENTRY_VOUCHER,
           entries: int = 1, value: int = 0, site: str | None = SITE,
           valid_from: int = T0 - 3600, valid_to: int = T0 + 86400) -> tuple[str, str]:
    tid = str(uuid.uuid4())
    return tid, issue_ticket(key, kind=kind, ticket_id=tid, valid_from=valid_from,
                             valid_to=valid_to, entries=entries, value_cents=value,
                             site_id=site)


def outbox(store: LocalStore) -> list[tuple[str, dict]]:
    return [(r[0], json.loads(r[1])) for r in
            store.conn.execute("SELECT type, data FROM outbox ORDER BY seq")]


def test_entry_voucher_grants_its_entries_then_refuses(
        tmp_path: Path, hmac_key: bytes, tenant_key: Ed25519PrivateKey) -> None:
    svc = gate(tmp_path, hmac_key, tenant_key)
    tid, code = ticket(tenant_key, entries=2)
    first = svc.tap("entry", "qr", code, GATE_IN)
    assert first.granted and first.decision.entries_left == 1
    assert svc.tap("entry", "qr", code, GATE_IN).granted
    third = svc.tap("entry", "qr", code, GATE_IN)
    assert third.decision.reason is Reason.NO_ENTRIES_LEFT
    evs = outbox(svc.store)
    assert [t for t, _ in evs] == ["ticket.used", "access.decision"] * 2 + ["access.decision"]
    used = [TicketUsed.from_data(d) for t, d in evs if t == "ticket.used"]
    assert [(u.where, u.entries, u.entries_left) for u in used] == [("gate", 1, 1),
                                                                    ("gate", 1, 0)]
    assert evs[-1][1]["ticket"] == tid and evs[-1][1]["reason"] == "no_entries_left"
    # the bearer code itself is stored nowhere on the device
    dump = "\n".join(svc.store.conn.iterdump())
    assert code not in dump and code[3:40] not in dump
    row = svc.store.conn.execute("SELECT entries_used FROM ticket_uses WHERE ticket_id = ?",
                                 (tid,)).fetchone()
    assert row == (2,)


def test_one_entry_ticket_replayed_at_the_same_device_is_refused(
        tmp_path: Path, hmac_key: bytes, tenant_key: Ed25519PrivateKey) -> None:
    svc = gate(tmp_path, hmac_key, tenant_key)
    _, code = ticket(tenant_key, TicketKind.DAY_TICKET, entries=1)
    assert svc.tap("entry", "qr", code, GATE_IN).granted
    svc.store.close()
    again = gate(tmp_path, hmac_key, tenant_key)  # a restart: the use is in the store
    out = again.tap("entry2", "qr", code, GATE_IN)
    assert out.decision.reason is Reason.NO_ENTRIES_LEFT and not out.granted
    assert [t for t, _ in outbox(again.store)].count("ticket.used") == 1


@pytest.mark.parametrize(("site", "ticket_site", "reason"), [
    ("maribor", SITE, Reason.WRONG_ZONE),
    (None, SITE, Reason.WRONG_ZONE),
])
def test_ticket_for_another_site_is_refused(
        tmp_path: Path, hmac_key: bytes, tenant_key: Ed25519PrivateKey, site: str | None,
        ticket_site: str, reason: Reason) -> None:
    svc = gate(tmp_path, hmac_key, tenant_key, site=site)
    _, code = ticket(tenant_key, site=ticket_site)
    out = svc.tap("entry", "qr", code, GATE_IN)
    assert out.decision.reason is reason
    assert [t for t, _ in outbox(svc.store)] == ["access.decision"]


def test_tenant_wide_ticket_and_till_issued_ticket_are_accepted(
        tmp_path: Path, hmac_key: bytes, tenant_key: Ed25519PrivateKey) -> None:
    svc = gate(tmp_path, hmac_key, tenant_key)
    _, anywhere = ticket(tenant_key, site=None)
    assert svc.tap("entry", "qr", anywhere, GATE_IN).granted
    till_key = Ed25519PrivateKey.generate()
    from contracts.ticket_token import public_bytes
    delegation = delegate_issuer(tenant_key, public_bytes(till_key.public_key()), SITE,
                                 T0 + 86400)
    code = issue_ticket(till_key, kind=TicketKind.DAY_TICKET, ticket_id=str(uuid.uuid4()),
                        valid_from=T0 - 60, valid_to=T0 + 3600, entries=1, site_id=SITE,
                        delegation=delegation)
    assert svc.tap("entry2", "qr", code, GATE_IN).granted


@pytest.mark.parametrize(("valid_from", "valid_to", "signer", "reason"), [
    (T0 - 7200, T0 - 1, "tenant", Reason.EXPIRED),
    (T0 + 60, T0 + 7200, "tenant", Reason.NOT_YET_VALID),
    (T0 - 60, T0 + 7200, "other", Reason.BAD_SIGNATURE),
])
def test_verification_refusals(tmp_path: Path, hmac_key: bytes,
                               tenant_key: Ed25519PrivateKey, valid_from: int, valid_to: int,
                               signer: str, reason: Reason) -> None:
    svc = gate(tmp_path, hmac_key, tenant_key)
    key = tenant_key if signer == "tenant" else Ed25519PrivateKey.generate()
    _, code = ticket(key, valid_from=valid_from, valid_to=valid_to)
    out = svc.tap("entry", "qr", code, GATE_IN)
    assert out.decision.reason is reason and not out.granted


def test_revoked_ticket_and_uses_elsewhere_come_through_the_change_feed(
        tmp_path: Path, hmac_key: bytes, tenant_key: Ed25519PrivateKey) -> None:
    svc = gate(tmp_path, hmac_key, tenant_key)
    refunded, code = ticket(tenant_key, entries=5)
    load(svc.store, [{"entity": "ticket", "op": "upsert", "id": refunded, "revoked": True}])
    assert svc.tap("entry", "qr", code, GATE_IN).decision.reason is Reason.BLOCKED
    # a later mark (say, uses counted) never takes a revocation back
    load(svc.store, [{"entity": "ticket", "op": "upsert", "id": refunded,
                      "used_by_device": {"other": 1}}])
    assert svc.tap("entry", "qr", code, GATE_IN).decision.reason is Reason.BLOCKED

    tid, three = ticket(tenant_key, entries=3)
    assert svc.tap("entry", "qr", three, GATE_IN).granted  # local use 1
    # the bridge counts 2 at another gate and (echoed back) the 1 of this device
    load(svc.store, [{"entity": "ticket", "op": "upsert", "id": tid,
                      "used_by_device": {"other": 2, "dev1": 1}}])
    out = svc.tap("entry", "qr", three, GATE_IN)
    assert out.decision.reason is Reason.NO_ENTRIES_LEFT


def test_value_voucher_at_a_gate(tmp_path: Path, hmac_key: bytes,
                                 tenant_key: Ed25519PrivateKey) -> None:
    _, code = ticket(tenant_key, TicketKind.VALUE_VOUCHER, entries=0, value=1500)
    plain = gate(tmp_path, hmac_key, tenant_key)
    assert plain.tap("entry", "qr", code, GATE_IN).decision.reason is Reason.NO_ENTITLEMENT
    plain.store.close()
    priced = gate(tmp_path, hmac_key, tenant_key, "b.db",
                  rules=SiteRules(tz=LJ, ticket_gate_price_cents=700))
    first = priced.tap("entry", "qr", code, GATE_IN)
    assert first.granted and first.decision.value_left_cents == 800
    assert priced.tap("entry", "qr", code, GATE_IN).granted
    assert priced.tap("entry", "qr", code, GATE_IN).decision.reason is Reason.NO_ENTRIES_LEFT
    used = [TicketUsed.from_data(d) for t, d in outbox(priced.store) if t == "ticket.used"]
    assert [(u.amount_cents, u.value_left_cents, u.entries) for u in used] == [
        (700, 800, 0), (700, 100, 0)]


def test_anti_passback_and_occupancy_treat_the_ticket_as_holder(
        tmp_path: Path, hmac_key: bytes, tenant_key: Ed25519PrivateKey) -> None:
    rules = SiteRules(tz=LJ, anti_passback=True, occupancy_limit=1)
    svc = gate(tmp_path, hmac_key, tenant_key, rules=rules)
    _, code = ticket(tenant_key, entries=5)
    assert svc.tap("entry", "qr", code, GATE_IN).granted
    assert svc.tap("entry", "qr", code, GATE_IN).decision.reason is Reason.ANTI_PASSBACK
    _, other = ticket(tenant_key, entries=5)
    assert svc.tap("entry", "qr", other, GATE_IN).decision.reason is Reason.OCCUPANCY_FULL
    out = svc.tap("exit", "qr", code, GATE_OUT)
    assert out.granted and not out.decision.consume
    assert svc.tap("entry", "qr", other, GATE_IN).granted
    left = svc.store.conn.execute("SELECT entries_used FROM ticket_uses ORDER BY 1").fetchall()
    assert sorted(r[0] for r in left) == [1, 1]


def test_same_device_repeat_window_echoes_without_a_second_use(
        tmp_path: Path, hmac_key: bytes, tenant_key: Ed25519PrivateKey) -> None:
    svc = make_service(tmp_path / "a.db", hmac_key, public_key=tenant_key.public_key(),
                       site_id=SITE)  # default 1.5 s repeat window
    _, code = ticket(tenant_key, entries=3)
    first = svc.tap("entry", "qr", code, GATE_IN)
    again = svc.tap("entry", "qr", code, GATE_IN)
    assert again.repeat and again.event == first.event
    assert [t for t, _ in outbox(svc.store)].count("ticket.used") == 1


def test_secure_gate_accepts_a_signed_ticket(tmp_path: Path, hmac_key: bytes,
                                             tenant_key: Ed25519PrivateKey) -> None:
    svc = gate(tmp_path, hmac_key, tenant_key)
    _, code = ticket(tenant_key)
    assert svc.tap("entry", "qr", code, GateContext("g1", "main", "in", True)).granted


def test_ended_tickets_are_pruned_a_day_after_their_end(
        tmp_path: Path, hmac_key: bytes, tenant_key: Ed25519PrivateKey) -> None:
    from agent.store.tickets import prune_expired

    svc = gate(tmp_path, hmac_key, tenant_key)
    ended, code = ticket(tenant_key, valid_to=T0 + 60)
    assert svc.tap("entry", "qr", code, GATE_IN).granted
    load(svc.store, [{"entity": "ticket", "op": "upsert", "id": ended, "revoked": True,
                      "valid_to": T0 + 60},
                     {"entity": "ticket", "op": "upsert", "id": str(uuid.uuid4()),
                      "revoked": True}])  # end unknown: kept
    with svc.store.transaction() as conn:
        assert prune_expired(conn, T0 + 60 + 3600) == 0  # a clock behind still refuses
        assert prune_expired(conn, T0 + 60 + 86401) == 2
    left = svc.store.conn.execute("SELECT COUNT(*) FROM ticket_marks").fetchone()[0]
    assert left == 1
