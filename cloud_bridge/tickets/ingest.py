"""``ticket.issued`` and ``ticket.used`` events from devices into the ticket ledger.

Called by cloud_bridge/ingest.py inside the transaction that stores the events. Exactly
once by event id: a use is a ``ticket_uses`` row keyed by (tenant, event id), an issue a
``tickets`` row keyed by the ticket id, both inserted with ON CONFLICT DO NOTHING, so a
redelivered event changes nothing. Every ticket with a new use gets a ``TicketMark``
change record (the uses per device), so the other gates of the tenant count it too.
A malformed ticket event is stored as an event (it was valid JSON) but left out of the
ledger, and logged.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select, update

from cloud_bridge.db_schema import insert_ignore
from cloud_bridge.tickets.ledger import mark_for
from cloud_bridge.tickets.schema import ticket_uses, tickets
from cloud_bridge.wire import EventIn
from contracts.ticket_events import (
    TICKET_ISSUED,
    TICKET_USED,
    TICKET_VOIDED,
    TicketIssued,
    TicketUsed,
    TicketVoided,
)

log = logging.getLogger(__name__)
TICKET_EVENTS = frozenset({TICKET_ISSUED, TICKET_USED, TICKET_VOIDED})
# the note of a POS receipt that sold a bridge-issued ticket (cloud_bridge/tickets/pos_sale.py)
SALE_NOTE = re.compile(r"^Vstopnica ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                       r"[0-9a-f]{12})$")


def _issued_row(ev: EventIn, issued: TicketIssued, now_ms: int) -> dict[str, Any]:
    return {"tenant": ev.tenant, "id": issued.ticket_id, "kind": int(issued.kind),
            "site": issued.site, "valid_from": issued.valid_from,
            "valid_to": issued.valid_to, "entries": issued.entries,
            "value_cents": issued.value_cents, "price_cents": issued.price_cents,
            "receipt": issued.receipt, "issuer": issued.issuer[:64], "source": ev.device,
            "buyer_email": None, "label": "", "refunded_ms": None, "refund_note": None,
            "sale_device": None, "sale_request": None,
            "created_ms": now_ms}


def _use_row(ev: EventIn, used: TicketUsed) -> dict[str, Any]:
    return {"tenant": ev.tenant, "event_id": ev.id, "ticket_id": used.ticket_id,
            "device": ev.device, "place": used.where, "entries": used.entries,
            "amount_cents": used.amount_cents, "receipt": used.receipt, "at": ev.ts}


def _parse(ev: EventIn) -> TicketIssued | TicketUsed | TicketVoided | None:
    try:
        parsed: TicketIssued | TicketUsed | TicketVoided = (
            TicketIssued.from_data(ev.data) if ev.type == TICKET_ISSUED
            else TicketVoided.from_data(ev.data) if ev.type == TICKET_VOIDED
            else TicketUsed.from_data(ev.data))
        uuid.UUID(parsed.ticket_id)
        if isinstance(parsed, TicketUsed) and (parsed.entries < 0 or parsed.amount_cents < 0):
            raise ValueError("a use takes nothing back")
        return parsed
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("ticket event %s of %s/%s left out of the ledger: %s", ev.id, ev.tenant,
                    ev.device, exc)
        return None


def _link_receipts(conn: Connection, evs: Sequence[EventIn]) -> None:
    """A ``pos.receipt`` whose note names a ticket is the fiscal receipt that sold it."""
    for ev in evs:
        if ev.type != "pos.receipt":
            continue
        match = SALE_NOTE.match(str(ev.data.get("note") or ""))
        invoice = ev.data.get("invoice_id")
        if match and isinstance(invoice, str) and 0 < len(invoice) <= 64:
            conn.execute(update(tickets).where(
                tickets.c.tenant == ev.tenant, tickets.c.id == match.group(1),
                tickets.c.receipt.is_(None)).values(receipt=invoice))


def record_ticket_events(conn: Connection, evs: Sequence[EventIn], now_ms: int
                         ) -> dict[str, list[dict[str, Any]]]:
    """Record the ticket events among ``evs``; the change records per tenant."""
    _link_receipts(conn, evs)
    issued: list[dict[str, Any]] = []
    uses: list[dict[str, Any]] = []
    voids: list[tuple[EventIn, TicketVoided]] = []
    for ev in evs:
        if ev.type not in TICKET_EVENTS:
            continue
        parsed = _parse(ev)
        if isinstance(parsed, TicketIssued):
            issued.append(_issued_row(ev, parsed, now_ms))
        elif isinstance(parsed, TicketVoided):
            voids.append((ev, parsed))
        elif isinstance(parsed, TicketUsed) and (parsed.entries > 0 or parsed.amount_cents > 0):
            uses.append(_use_row(ev, parsed))
    if issued:
        conn.execute(insert_ignore(conn, tickets), issued)
    voided = _record_voids(conn, voids, now_ms)
    if not uses:
        return voided
    seen = {(str(t), str(e)) for t, e in conn.execute(
        select(ticket_uses.c.tenant, ticket_uses.c.event_id).where(
            ticket_uses.c.event_id.in_([u["event_id"] for u in uses])))}
    fresh = [u for u in uses if (u["tenant"], u["event_id"]) not in seen]
    if not fresh:
        return voided
    conn.execute(insert_ignore(conn, ticket_uses), fresh)
    records: dict[str, list[dict[str, Any]]] = defaultdict(list, voided)
    for tenant, ticket_id in sorted({(u["tenant"], u["ticket_id"]) for u in fresh}):
        revoked = conn.execute(select(tickets.c.refunded_ms).where(
            tickets.c.tenant == tenant, tickets.c.id == ticket_id)).scalar()
        records[tenant].append(mark_for(conn, tenant, ticket_id, revoked is not None))
    return dict(records)


def _record_voids(conn: Connection, voids: Sequence[tuple[EventIn, TicketVoided]],
                  now_ms: int) -> dict[str, list[dict[str, Any]]]:
    """A ticket a device voided (its till receipt line refunded) is refunded in the
    ledger, once: the first void sets ``refunded_ms``, a redelivered one changes nothing,
    and the revoking mark goes to the tenant's other devices."""
    records: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev, void in voids:
        changed = conn.execute(update(tickets).where(
            tickets.c.tenant == ev.tenant, tickets.c.id == void.ticket_id,
            tickets.c.refunded_ms.is_(None)).values(
                refunded_ms=now_ms,
                refund_note=f"Vračilo na blagajni {void.receipt[:64]} ({ev.device[:64]})"))
        if changed.rowcount:
            records[ev.tenant].append(mark_for(conn, ev.tenant, void.ticket_id, True))
    return dict(records)
