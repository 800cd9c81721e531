"""The till's work behind its routes: the session check, a sale (priced from the
catalogue, drawer kicked and the customer's line updated), a refund, the drawer and the
catalogue updates, on top of the receipt service."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import HTTPException

from agent.errors import ConfigError
from agent.pos.money import to_cents
from agent.pos.refund import parse_refund
from agent.pos.service import ReceiptService
from agent.till.cashiers import Cashiers, Session
from agent.till.catalogue import Catalogue, CatalogueUpdates
from agent.till.customer_display import CustomerDisplay
from agent.till.day_end import DayEnd
from agent.till.drawer import open_drawer
from agent.till.reads import TillReads
from agent.till.sale import NotPermitted, TillSaleRequest, build_job, parse_sale
from agent.till.ticket_issuer import TicketsUnavailable
from agent.till.tickets import TillTickets
from agent.till.voucher_pay import VoucherPay, VoucherRefused, receipt_note
from contracts.ticket_token import TicketToken
from drivers.errors import DriverError

WithReceipt = Callable[[sqlite3.Connection, str, datetime], None]


def _all(writers: list[WithReceipt]) -> WithReceipt | None:
    """One receipt-transaction step running each of ``writers`` in turn."""
    if not writers:
        return None

    def run(conn: sqlite3.Connection, invoice_id: str, now: datetime) -> None:
        for write in writers:
            write(conn, invoice_id, now)
    return run


class Till:
    """What the routes work on: the receipt service, the catalogue and the cashiers."""

    def __init__(self, service: ReceiptService, catalogue: Catalogue, cashiers: Cashiers,
                 drawer_kick: bool, updates: CatalogueUpdates | None = None,
                 display: CustomerDisplay | None = None,
                 tickets: TillTickets | None = None, hmac_key: bytes | None = None) -> None:
        self.service = service
        self.catalogue = catalogue
        self.cashiers = cashiers
        self.drawer_kick = drawer_kick
        self.day_end = DayEnd(service)
        self.updates = updates
        self.display = display or CustomerDisplay(None)
        self._catalogue_lock = threading.Lock()
        self.tickets = tickets
        # the till's own reader: cashiers' cards and the barcode scanner
        self.reads = TillReads(cashiers, hmac_key or b"", lambda: self.catalogue)
        self.vouchers: VoucherPay | None = None
        if tickets is not None:
            service.attachments = tickets.blocks
            if tickets.issuer.tenant_key is not None:
                self.vouchers = VoucherPay(tickets.store, tickets.outbox,
                                           tickets.issuer.tenant_key, tickets.issuer.site)

    def update_catalogue(self, data: bytes) -> int:
        """Install a newer signed catalogue; raises ConfigError when it is refused."""
        if self.updates is None:
            raise ConfigError("catalogue updates are not enabled on this till")
        with self._catalogue_lock:
            self.catalogue = self.updates.accept(data, self.catalogue)
            return self.catalogue.version

    def session(self, token: str | None) -> Session:
        found = self.cashiers.session(token or "")
        if found is None:
            raise HTTPException(401, "sign in first")
        return found

    def sell(self, session: Session, raw: Any) -> dict[str, Any]:
        req = parse_sale(raw)
        catalogue = self.catalogue
        writers: list[WithReceipt] = []
        token, balance = self._voucher(req)
        job = build_job(req, session, catalogue, balance)
        by_voucher = sum(to_cents(Decimal(p["amount"])) for p in job["payments"]
                         if p["method"] == "other")
        if self.vouchers is not None and token is not None:
            writers.append(self.vouchers.writer(token, by_voucher, req.idempotency_key))
            job["note"] = receipt_note(token, balance, by_voucher)
        if self.tickets is not None:
            sold = self.tickets.plan(req, catalogue)
            if sold:
                writers.append(self.tickets.writer(sold))
        elif any(catalogue.products[ln.product].ticket for ln in req.lines):
            raise TicketsUnavailable("no_tenant_key", "this till cannot issue tickets")
        result = self.service.submit(job, _all(writers))
        paid_total = sum(Decimal(p["amount"]) for p in job["payments"])
        change = to_cents(paid_total - Decimal(result.total))
        drawer = None
        # the drawer opens for cash taken, not for a sale a voucher paid in full
        cash_taken = any(p["method"] == "cash" and Decimal(p["amount"]) > 0
                         for p in job["payments"])
        if cash_taken and self.drawer_kick and not result.duplicate:
            drawer = self.kick("sale " + result.invoice_id)
        self.display.paid(to_cents(Decimal(result.total)), change)
        return {"invoice_id": result.invoice_id, "total": result.total,
                "change_cents": change, "fiscal_state": result.fiscal_state,
                "print_state": result.print_state, "eor": result.eor,
                "duplicate": result.duplicate, "drawer": drawer,
                "voucher_cents": by_voucher,
                "voucher_left_cents": None if token is None else balance - by_voucher}

    def _voucher(self, req: TillSaleRequest) -> tuple[TicketToken | None, int]:
        """The value voucher paying towards the sale and its balance; raises
        VoucherRefused."""
        if req.payment.voucher is None:
            return None, 0
        if self.vouchers is None:
            raise VoucherRefused("voucher_forged", "this till has no tenant public key")
        token = self.vouchers.verify(req.payment.voucher, int(time.time()))
        return token, self.vouchers.available(token, req.idempotency_key)

    def refund(self, session: Session, raw: dict[str, Any]) -> dict[str, Any]:
        if not session.cashier.may_refund:
            raise NotPermitted("refund")
        cashier = session.cashier
        req = parse_refund({
            **raw, "operator": {"name": cashier.name, "tax_number": cashier.tax_number}})
        voider = None if self.tickets is None else self.tickets.voider(req)
        result = self.service.refund(req, voider)
        drawer = None
        if raw.get("method", "cash") == "cash" and self.drawer_kick and not result.duplicate:
            drawer = self.kick("refund " + result.invoice_id)
        return {"invoice_id": result.invoice_id, "total": result.total,
                "fiscal_state": result.fiscal_state, "print_state": result.print_state,
                "duplicate": result.duplicate, "drawer": drawer}

    def kick(self, reason: str) -> str:
        try:
            open_drawer(self.service.printer, reason)
        except (DriverError, OSError):
            return "failed"
        return "opened"
