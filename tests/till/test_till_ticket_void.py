"""A refunded till ticket is void at once on its device (issue 18 part 1, issue 22 part 6):
the refund receipt's transaction revokes the refunded units' codes in ``ticket_marks``
(unused tickets first), so this device's gate refuses them, and writes ``ticket.voided``
for the bridge's ledger (tests/tickets/test_ledger.py checks that side)."""

from __future__ import annotations

import time
from dataclasses import replace

from agent.access.model import GateContext
from cloud_bridge.catalogue.delegation import make_delegation
from contracts.reasons import Reason
from contracts.ticket_token import verify_ticket
from tests.till.test_till_tickets import TicketTill, _printed_codes, ticket_till  # noqa: F401

GATE_IN = GateContext("g1", "main", "in")


def test_a_refunded_ticket_is_refused_at_the_gate_of_the_same_device(
        ticket_till: TicketTill) -> None:  # noqa: F811
    till = ticket_till
    issuer = till.client.get("/till/api/tickets/issuer").json()
    good = make_delegation(till.keys, "t1", "s1", issuer["issuer_public_key"], 30,
                           int(time.time()))
    assert till.client.put("/till/api/tickets/delegation", content=good).status_code == 200
    sale = till.client.post("/till/api/sale", headers={"X-Till-Session": till.token}, json={
        "idempotency_key": "void-000001", "payment": {"method": "card"},
        "lines": [{"product": "kava", "quantity": "1"},
                  {"product": "dnevna", "quantity": "2"}]}).json()
    invoice = sale["invoice_id"]
    first, second = _printed_codes(till.daemon)
    tenant_key = till.keys.get("t1").public_key
    ids = [verify_ticket(c, tenant_key, int(time.time()), "s1").ticket_id
           for c in (first, second)]
    access = till.daemon.access
    assert access.tap("entry", "qr", first, GATE_IN).decision.granted

    the_till = till.daemon.pos.till  # type: ignore[union-attr]
    assert the_till is not None
    session = the_till.cashiers.session(till.token)
    assert session is not None
    boss = replace(session, cashier=session.cashier.model_copy(update={"may_refund": True}))
    # the coffee's refund voids nothing; one of the two tickets: the unused one
    the_till.refund(boss, {"idempotency_key": "void-r00001", "original": invoice,
                           "lines": [{"line": 0, "quantity": "1"}]})
    assert till.events("ticket.voided") == []
    refund = the_till.refund(boss, {"idempotency_key": "void-r00002", "original": invoice,
                                    "lines": [{"line": 1, "quantity": "1"}]})
    refused = access.tap("entry2", "qr", second, GATE_IN).decision
    assert not refused.granted and refused.reason is Reason.BLOCKED
    assert till.events("ticket.voided") == [
        {"ticket_id": ids[1], "receipt": refund["invoice_id"], "original": invoice}]
    # a retried refund voids nothing more; the rest of the line voids the used one
    again = the_till.refund(boss, {"idempotency_key": "void-r00002", "original": invoice,
                                   "lines": [{"line": 1, "quantity": "1"}]})
    assert again["duplicate"] is True and len(till.events("ticket.voided")) == 1
    the_till.refund(boss, {"idempotency_key": "void-r00003", "original": invoice,
                           "lines": [{"line": 1, "quantity": "1"}]})
    assert [e["ticket_id"] for e in till.events("ticket.voided")] == ids[::-1]
    with till.daemon.store.lock:
        revoked = {str(t) for (t,) in till.daemon.store.conn.execute(
            "SELECT ticket_id FROM ticket_marks WHERE revoked = 1")}
    assert revoked == set(ids)
