"""The bridge's ticket ledger on SQLite and PostgreSQL: issue, uses from device events
(exactly once by event id), balance and state, refund revoking on devices, liabilities,
the JSON API, and the buyer's e-mail through a real SMTP server."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, select

from cloud_bridge.change_feed import ChangeFeed
from cloud_bridge.db_schema import change_log, create_schema, write_tx
from cloud_bridge.ingest import Ingestor
from cloud_bridge.notifications import Notifier, mailer_from_url
from cloud_bridge.tenant_keys import TenantKeys, TenantKeyStore
from cloud_bridge.tickets import ledger
from cloud_bridge.tickets.documents import short_id
from cloud_bridge.tickets.operations import TicketDesk
from cloud_bridge.tickets.schema import ensure_ticket_schema
from cloud_bridge.wire import EventBatch
from contracts.membership_changes import TicketMark, parse_changes
from contracts.ticket_events import TicketIssued, TicketUsed, TicketVoided
from contracts.ticket_token import TicketKind, verify_ticket
from tests.bridge.conftest import FakePublisher
from tests.smtp_server import SmtpServer, body_text

NOW = int(time.time())


def entry_voucher(entries: int = 3, price: int = 3000, **kw: Any) -> ledger.IssueRequest:
    return ledger.IssueRequest(kind=TicketKind.ENTRY_VOUCHER, valid_from=NOW - 60,
                               valid_to=NOW + 86400, entries=entries, price_cents=price, **kw)


def value_voucher(value: int = 5000) -> ledger.IssueRequest:
    return ledger.IssueRequest(kind=TicketKind.VALUE_VOUCHER, valid_from=NOW - 60,
                               valid_to=NOW + 86400, value_cents=value, price_cents=value)


def ingest(engine: Engine, tenant: str, device: str, events: list[tuple[int, str, str, dict]]
           ) -> Any:
    batch = EventBatch.model_validate({"v": 1, "tenant": tenant, "device": device, "events": [
        {"id": eid, "tenant": tenant, "device": device, "seq": seq,
         "ts": "2026-11-24T19:06:38.195Z", "type": type_, "data": data}
        for seq, eid, type_, data in events]})
    return Ingestor(engine).ingest([batch])


def used_event(ticket_id: str, entries: int = 1, amount: int = 0, where: str = "gate") -> dict:
    return TicketUsed(ticket_id=ticket_id, where=where, entries=entries,  # type: ignore[arg-type]
                      amount_cents=amount, entries_left=0, value_left_cents=0).to_data()


def marks(engine: Engine, tenant: str) -> list[TicketMark]:
    with engine.connect() as conn:
        rows = conn.execute(select(change_log.c.changes).where(change_log.c.tenant == tenant)
                            .order_by(change_log.c.version)).scalars().all()
    out = []
    for raw in rows:
        out += [c for c in parse_changes(json.loads(raw) if isinstance(raw, str) else raw)
                if isinstance(c, TicketMark)]
    return out


@pytest.fixture
def desk(engine: Engine, keys_dir: Any) -> TicketDesk:
    create_schema(engine)
    ensure_ticket_schema(engine)
    keys = TenantKeyStore(keys_dir)
    return TicketDesk(engine, keys, ChangeFeed(keys, FakePublisher(), "es/v1"))


def test_issue_signs_a_code_the_gates_accept_and_uses_count_once(
        desk: TicketDesk, engine: Engine, tenant: str, tenant_keys: TenantKeys) -> None:
    row, code, mailed = desk.issue(tenant, entry_voucher(site="lj"), "http://x/")
    assert not mailed
    token = verify_ticket(code, tenant_keys.public_key, NOW, "lj")
    assert (token.ticket_id, token.entries, token.kind) == (row["id"], 3,
                                                            TicketKind.ENTRY_VOUCHER)
    assert desk.code(tenant, row) == code  # signed again from the ledger: the same code
    e1, e2 = str(uuid.uuid4()), str(uuid.uuid4())
    ingest(engine, tenant, "gate-1", [(1, e1, "ticket.used", used_event(row["id"])),
                                      (2, e2, "ticket.used", used_event(row["id"]))])
    # the same events again (a redelivery under the same seqs) change nothing
    ingest(engine, tenant, "gate-1", [(1, e1, "ticket.used", used_event(row["id"]))])
    with engine.connect() as conn:
        bal = ledger.balance(conn, tenant, ledger.get_ticket(conn, tenant, row["id"]))
        owed = ledger.voucher_liabilities(conn, tenant)
    assert (bal.entries_used, bal.entries_left, bal.state) == (2, 1, "valid")
    assert owed == 1000  # 1 of 3 entries left of a 30 € voucher
    [mark] = marks(engine, tenant)
    assert mark.id == row["id"] and mark.used_by_device == {"gate-1": 2} and not mark.revoked


def test_refund_revokes_on_devices_and_leaves_the_liabilities(
        desk: TicketDesk, engine: Engine, tenant: str) -> None:
    row, _, _ = desk.issue(tenant, value_voucher(5000), "http://x/")
    other, _, _ = desk.issue(tenant, entry_voucher(entries=2, price=2000), "http://x/")
    ingest(engine, tenant, "till-1", [(1, str(uuid.uuid4()), "ticket.used",
                                       used_event(row["id"], entries=0, amount=1250,
                                                  where="till"))])
    with engine.connect() as conn:
        assert ledger.voucher_liabilities(conn, tenant) == 3750 + 2000
        assert ledger.open_by_kind(conn, tenant) == [
            ledger.OpenKind(TicketKind.ENTRY_VOUCHER, 1, 2, 2000),
            ledger.OpenKind(TicketKind.VALUE_VOUCHER, 1, 0, 3750)]
    refunded = desk.refund(tenant, other["id"], "kupec si je premislil")
    assert refunded["refunded_ms"] is not None
    with engine.connect() as conn:
        assert ledger.voucher_liabilities(conn, tenant) == 3750
        listed = {r["id"]: b.state for r, b in ledger.list_tickets(conn, tenant)}
        only_refunded = ledger.list_tickets(conn, tenant, state="refunded")
    assert listed == {row["id"]: "valid", other["id"]: "refunded"}
    assert [r["id"] for r, _ in only_refunded] == [other["id"]]
    revoked = [m for m in marks(engine, tenant) if m.revoked]
    assert [m.id for m in revoked] == [other["id"]]
    with pytest.raises(Exception, match="already refunded"):
        desk.refund(tenant, other["id"], "")


def test_states_expired_and_used_up(engine: Engine, desk: TicketDesk, tenant: str) -> None:
    row, _, _ = desk.issue(tenant, entry_voucher(entries=1), "http://x/")
    assert ledger.balance_of(row, 0, 0, NOW + 86400).state == "expired"
    assert ledger.balance_of(row, 1, 0, NOW).state == "used_up"
    assert ledger.balance_of(row, 0, 0, NOW - 3600).state == "not_yet_valid"
    with engine.connect() as conn:
        assert ledger.voucher_liabilities(conn, tenant, NOW + 86400) == 0


def test_a_till_sale_arrives_as_ticket_issued(engine: Engine, desk: TicketDesk,
                                              tenant: str) -> None:
    tid = str(uuid.uuid4())
    issued = TicketIssued(ticket_id=tid, kind=TicketKind.DAY_TICKET, site="lj",
                          valid_from=NOW - 60, valid_to=NOW + 3600, entries=1, value_cents=0,
                          price_cents=900, receipt="PP1-T1-42", issuer="ab" * 32)
    ingest(engine, tenant, "till-1", [(1, str(uuid.uuid4()), "ticket.issued",
                                       issued.to_data())])
    ingest(engine, tenant, "gate-1", [(1, str(uuid.uuid4()), "ticket.used",
                                       used_event(tid))])
    with engine.connect() as conn:
        row = ledger.get_ticket(conn, tenant, tid)
        assert (row["receipt"], row["source"], row["price_cents"]) == ("PP1-T1-42",
                                                                      "till-1", 900)
        assert ledger.balance(conn, tenant, row).state == "used_up"
    with pytest.raises(Exception, match="issued by a till"):
        desk.code(tenant, row)


def test_malformed_ticket_events_stay_out_of_the_ledger(engine: Engine, desk: TicketDesk,
                                                        tenant: str) -> None:
    result = ingest(engine, tenant, "gate-1", [
        (1, str(uuid.uuid4()), "ticket.used", {"ticket_id": "x" * 300, "where": "gate",
                                               "entries": 1, "amount_cents": 0,
                                               "entries_left": 0, "value_left_cents": 0}),
        (2, str(uuid.uuid4()), "ticket.used", {"ticket_id": str(uuid.uuid4())})])
    assert result.events == 2 and result.acks[(tenant, "gate-1")] == 2  # stored, acked
    assert marks(engine, tenant) == []


def test_buyer_gets_the_ticket_by_e_mail_once(engine: Engine, keys_dir: Any, tenant: str,
                                              smtp_server: SmtpServer) -> None:
    create_schema(engine)
    keys = TenantKeyStore(keys_dir)
    notifier = Notifier(engine, mailer_from_url(smtp_server.url("blagajna@fitnes.test")), None)
    desk = TicketDesk(engine, keys, ChangeFeed(keys, FakePublisher(), "es/v1"), notifier,
                      link_key=b"k" * 32)
    desk.ensure_schema()
    req = ledger.IssueRequest(kind=TicketKind.VALUE_VOUCHER, valid_from=NOW - 60,
                              valid_to=NOW + 86400, value_cents=4000, price_cents=4000,
                              buyer_email="ana@example.si")
    row, code, mailed = desk.issue(tenant, req, "https://bridge.test/")
    assert mailed
    assert notifier.deliver_due() == 1
    [msg] = smtp_server.wait_for(1)
    assert msg["To"] == "ana@example.si"
    assert msg["Subject"] == f"{tenant}: Darilni bon (vrednost) {short_id(row['id'])}"
    body = body_text(msg)
    assert code in body and "40,00" in body
    assert f"https://bridge.test/ticket-pdf/{tenant}/{row['id']}/" in body
    # enqueueing the same ticket again (a retried request) sends nothing more
    with write_tx(engine) as conn:
        from cloud_bridge.tickets.notice import ticket_notice
        assert not notifier.enqueue(conn, ticket_notice(row, code, tenant, None))
    assert notifier.deliver_due() == 0


def test_json_api_issue_get_refund(client: Any, tenant: str, published: FakePublisher
                                   ) -> None:
    base = f"/api/v1/tenants/{tenant}/tickets"
    bad = client.post(base, json={"kind": "value_voucher", "valid_from": NOW,
                                  "valid_to": NOW + 60, "entries": 2})
    assert bad.status_code == 422
    made = client.post(base, json={"kind": "day_ticket", "valid_from": NOW - 60,
                                   "valid_to": NOW + 3600, "entries": 1, "price_cents": 900})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["code"].startswith("ET1") and body["state"] == "valid"
    got = client.get(f"{base}/{body['id']}").json()
    assert got["entries_left"] == 1 and "code" not in got
    refunded = client.post(f"{base}/{body['id']}/refund", json={"note": "storno"})
    assert refunded.status_code == 200 and refunded.json()["state"] == "refunded"
    assert published.on("/members/changes")  # the revocation went out to the devices
    assert client.get(f"{base}?state=refunded").json()[0]["id"] == body["id"]


def test_a_device_that_takes_a_snapshot_learns_the_refund(
        desk: TicketDesk, engine: Engine, tenant: str, tenant_keys: TenantKeys,
        tmp_path: Any, hmac_key: bytes) -> None:
    from agent.access.model import GateContext, SiteRules
    from agent.access.service import AccessService
    from agent.store.local_store import LocalStore
    from agent.store.outbox import Outbox
    from agent.store.sync_store import MembershipData
    from cloud_bridge.snapshot import snapshot_envelopes
    from contracts.reasons import Reason
    from sync.membership_applier import MembershipApplier, Outcome
    from tests.store_helpers import LJ

    row, code, _ = desk.issue(tenant, entry_voucher(entries=5), "http://x/")
    used, _, _ = desk.issue(tenant, entry_voucher(entries=1), "http://x/")
    ingest(engine, tenant, "gate-9", [(1, str(uuid.uuid4()), "ticket.used",
                                       used_event(used["id"]))])
    desk.refund(tenant, row["id"], "")
    store = LocalStore(tmp_path / "agent.db")
    applier = MembershipApplier(MembershipData(store), tenant, tenant_keys.public_key)
    results = [applier.handle(c.envelope) for c in snapshot_envelopes(engine, tenant_keys, 2)]
    assert results[-1].outcome is Outcome.APPLIED
    gate = AccessService(store, Outbox(store, tenant, "gate-1"), SiteRules(tz=LJ), hmac_key,
                         public_key=tenant_keys.public_key, repeat_window_s=0)
    tap = gate.tap("entry", "qr", code, GateContext("g1", "main", "in"))
    assert tap.decision.reason is Reason.BLOCKED
    other = desk.code(tenant, used)
    tap = gate.tap("entry", "qr", other, GateContext("g1", "main", "in"))
    assert tap.decision.reason is Reason.NO_ENTRIES_LEFT  # its use at gate-9 came along


def test_a_ticket_voided_by_a_till_refund_is_refunded_once(engine: Engine, desk: TicketDesk,
                                                           tenant: str) -> None:
    tid = str(uuid.uuid4())
    issued = TicketIssued(ticket_id=tid, kind=TicketKind.DAY_TICKET, site="lj",
                          valid_from=NOW - 60, valid_to=NOW + 3600, entries=1, value_cents=0,
                          price_cents=900, receipt="P1-T1-7", issuer="ab" * 32)
    void = TicketVoided(ticket_id=tid, receipt="P1-T1-8", original="P1-T1-7").to_data()
    void_id = str(uuid.uuid4())
    ingest(engine, tenant, "till-1", [(1, str(uuid.uuid4()), "ticket.issued",
                                       issued.to_data()), (2, void_id, "ticket.voided", void)])
    with engine.connect() as conn:
        row = ledger.get_ticket(conn, tenant, tid)
        assert ledger.balance(conn, tenant, row).state == "refunded"
        assert row["refund_note"] == "Vračilo na blagajni P1-T1-8 (till-1)"
    revoking = [m for m in marks(engine, tenant) if m.id == tid]
    assert [m.revoked for m in revoking] == [True]
    # redelivered: nothing changes, no second mark
    ingest(engine, tenant, "till-1", [(2, void_id, "ticket.voided", void)])
    assert len([m for m in marks(engine, tenant) if m.id == tid]) == 1
