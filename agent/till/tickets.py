"""Tickets and vouchers sold at the till (issue 22 part 6).

A ticket product (catalogue ``ticket``) is a receipt line like any other (its price and
VAT rate from the catalogue, fiscalised with the receipt); each unit sold also gets a
signed code (contracts/ticket_token.py, "ET1...") from the till's issuer key with the
tenant's delegation for this site (ticket_issuer.py), valid at once at every gate of the
site, offline too. Inside the receipt's numbering transaction the codes are stored in
``till_tickets`` (for reprints) and a ``ticket.issued`` event per ticket enters the outbox
(contracts/ticket_events.py, ``receipt`` = the invoice number): a receipt is never stored
without its tickets, nor a ticket without its receipt. The code itself never goes into an
event or a log; it is printed as a QR code after the receipt's FURS code.

Validity: from the moment of the sale to the end of the ``valid_days``-th local day
(Europe/Ljubljana), so a day ticket bought at 18:00 is valid until midnight.
"""

from __future__ import annotations

import math
import sqlite3
import time as _time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from agent.pos.fiscal.zoi import LJUBLJANA, local_time
from agent.pos.layout import ticket_qr
from agent.pos.money import fmt_amount
from agent.pos.refund import RefundRequest
from agent.store.local_store import LocalStore
from agent.store.outbox import Outbox
from agent.till.catalogue import Catalogue, TicketSpec
from agent.till.sale import TillSaleRequest
from agent.till.ticket_issuer import TicketIssuer, TicketsUnavailable
from contracts.ticket_events import TICKET_ISSUED, TICKET_VOIDED, TicketIssued, TicketVoided
from contracts.ticket_token import TicketKind
from drivers.escpos_render import Block, Style, Text

MAX_TICKETS_PER_SALE = 50

_TABLE = ("CREATE TABLE IF NOT EXISTS till_tickets (invoice_id TEXT NOT NULL, seq INTEGER "
          "NOT NULL, ticket_id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, kind INTEGER NOT "
          "NULL, valid_to INTEGER NOT NULL, entries INTEGER NOT NULL, value_cents INTEGER "
          "NOT NULL, code TEXT NOT NULL, PRIMARY KEY (invoice_id, seq))")
# the receipt line of each ticket sold, and the refund receipt that voided it (its own
# table: tills that sold tickets before it need no migration; their tickets are not voided)
_LINES = ("CREATE TABLE IF NOT EXISTS till_ticket_lines (ticket_id TEXT PRIMARY KEY, "
          "invoice_id TEXT NOT NULL, line INTEGER NOT NULL, voided_by TEXT)")


@dataclass(frozen=True, slots=True)
class SoldTicket:
    """One ticket of a sale, before its code exists."""

    name: str
    spec: TicketSpec
    price_cents: int  # the unit's price after its discount
    line: int  # the receipt line that sold it (a refund of the line voids it)


def valid_until(sold_at: datetime, days: int) -> int:
    """Epoch seconds of the local midnight that ends the ``days``-th day of validity."""
    last = local_time(sold_at).date() + timedelta(days=days)
    return int(datetime.combine(last, time(0), LJUBLJANA).timestamp())


class TillTickets:
    def __init__(self, store: LocalStore, outbox: Outbox, issuer: TicketIssuer,
                 width: int) -> None:
        self.store = store
        self.outbox = outbox
        self.issuer = issuer
        self.width = width
        with store.transaction() as conn:
            conn.execute(_TABLE)
            conn.execute(_LINES)

    def plan(self, req: TillSaleRequest, catalogue: Catalogue) -> list[SoldTicket]:
        """The tickets a sale makes (none for a sale without ticket products); raises
        TicketsUnavailable when they cannot be issued, before anything is numbered."""
        sold: list[SoldTicket] = []
        for i, line in enumerate(req.lines):
            product = catalogue.products.get(line.product)
            if product is None or product.ticket is None:
                continue
            if line.quantity != line.quantity.to_integral_value() or line.quantity < 1:
                raise TicketsUnavailable("ticket_quantity", f"lines.{i}: tickets are sold "
                                         "in whole units")
            percent = line.discount_percent or req.receipt_discount_percent or Decimal(0)
            price = (Decimal(product.price_cents) * (100 - percent) / 100).quantize(
                Decimal(1), ROUND_HALF_UP)
            sold += [SoldTicket(product.name, product.ticket, int(price), i)] * int(line.quantity)
        if len(sold) > MAX_TICKETS_PER_SALE:
            raise TicketsUnavailable("ticket_quantity", f"at most {MAX_TICKETS_PER_SALE} "
                                     "tickets in one sale")
        if sold:
            self.issuer.check_ready(int(_time.time()))
        return sold

    def writer(self, sold: list[SoldTicket]
               ) -> Callable[[sqlite3.Connection, str, datetime], None]:
        """What the receipt's transaction runs: codes, rows and ``ticket.issued`` events."""
        def write(conn: sqlite3.Connection, invoice_id: str, now: datetime) -> None:
            valid_from = int(now.timestamp())
            for seq, ticket in enumerate(sold):
                spec = ticket.spec
                ticket_id = str(uuid.uuid4())
                valid_to = valid_until(now, spec.valid_days)
                issued = self.issuer.issue(
                    kind=spec.kind, ticket_id=ticket_id, valid_from=valid_from,
                    valid_to=valid_to, entries=spec.entries, value_cents=spec.value_cents)
                conn.execute("INSERT INTO till_tickets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (invoice_id, seq, ticket_id, ticket.name, int(spec.kind),
                              valid_to, spec.entries, spec.value_cents, issued.code))
                conn.execute("INSERT INTO till_ticket_lines VALUES (?, ?, ?, NULL)",
                             (ticket_id, invoice_id, ticket.line))
                event = TicketIssued(
                    ticket_id=ticket_id, kind=spec.kind, site=self.issuer.site,
                    valid_from=valid_from, valid_to=valid_to, entries=spec.entries,
                    value_cents=spec.value_cents, price_cents=ticket.price_cents,
                    receipt=invoice_id, issuer=issued.issuer)
                self.outbox.append(conn, TICKET_ISSUED, event.to_data(), now)
        return write

    def voider(self, req: RefundRequest
               ) -> Callable[[sqlite3.Connection, str, datetime], None] | None:
        """What a refund receipt's transaction runs: each refunded unit of a ticket line
        voids one of its tickets (unused ones first; a part of a unit voids a whole one):
        revoked on this device at once (``ticket_marks``, which its gate reads) and a
        ``ticket.voided`` event, so the bridge marks it refunded and tells the others."""
        asked: dict[int, Decimal] = {}
        for pick in req.lines:
            asked[pick.line] = asked.get(pick.line, Decimal(0)) + pick.quantity

        def write(conn: sqlite3.Connection, invoice_id: str, now: datetime) -> None:
            for line, qty in sorted(asked.items()):
                rows = conn.execute(
                    "SELECT l.ticket_id, t.valid_to FROM till_ticket_lines l JOIN "
                    "till_tickets t ON t.ticket_id = l.ticket_id LEFT JOIN ticket_uses u ON "
                    "u.ticket_id = l.ticket_id WHERE l.invoice_id = ? AND l.line = ? AND "
                    "l.voided_by IS NULL ORDER BY u.ticket_id IS NOT NULL, t.seq DESC "
                    "LIMIT ?", (req.original, line, math.ceil(qty))).fetchall()
                for ticket_id, valid_to in rows:
                    conn.execute("UPDATE till_ticket_lines SET voided_by = ? WHERE "
                                 "ticket_id = ?", (invoice_id, ticket_id))
                    revoke_here(conn, ticket_id, valid_to)
                    event = TicketVoided(ticket_id, invoice_id, req.original)
                    self.outbox.append(conn, TICKET_VOIDED, event.to_data(), now)
        return write

    def blocks(self, invoice_id: str) -> list[Block]:
        """The receipt's tickets as printed: what each grants, until when, its QR code."""
        with self.store.lock:
            rows = self.store.conn.execute(
                "SELECT name, kind, valid_to, entries, value_cents, code FROM till_tickets "
                "WHERE invoice_id = ? ORDER BY seq", (invoice_id,)).fetchall()
        out: list[Block] = []
        for name, kind, valid_to, entries, value_cents, code in rows:
            until = datetime.fromtimestamp(valid_to - 1, LJUBLJANA).strftime("%d.%m.%Y")
            out += [Style(align="left"),
                    Text(["-" * self.width, name, _grants(TicketKind(kind), entries,
                                                          value_cents),
                          f"Velja do vključno {until}, na tej lokaciji."]),
                    Style(align="center"),
                    ticket_qr(code),
                    Text([""])]
        return out


def revoke_here(conn: sqlite3.Connection, ticket_id: str, valid_to: int) -> None:
    """Revoke a ticket on this device now, as a mark of the bridge would (a revocation is
    never undone: agent/store/tickets.apply_mark keeps it)."""
    conn.execute("INSERT INTO ticket_marks(ticket_id, revoked, valid_to) VALUES (?, 1, ?) "
                 "ON CONFLICT(ticket_id) DO UPDATE SET revoked = 1", (ticket_id, valid_to))


def _grants(kind: TicketKind, entries: int, value_cents: int) -> str:
    """What the ticket grants, in the receipt's language (Slovenian, like layout.py)."""
    if kind is TicketKind.VALUE_VOUCHER:
        return f"Darilni bon v vrednosti {fmt_amount(value_cents)} EUR"
    if kind is TicketKind.ENTRY_VOUCHER:
        return f"Bon za vstope: {entries}"
    return "Vstopnica" if entries == 1 else f"Vstopnica, vstopov: {entries}"
