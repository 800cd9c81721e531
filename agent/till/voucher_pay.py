"""A value voucher spent at the till (issue 18 part 1, issue 22 part 6).

The cashier scans or types the voucher's printed code ("ET1...", contracts/ticket_token.py)
as a payment. The till verifies it as a gate of the site does (signature, site, validity)
and takes min(balance, amount due); the rest is paid in cash or by card. The balance is
the gate's: value - this device's uses (``ticket_uses``) - other devices' uses
(``ticket_marks``), refused when revoked. Fiscally the redemption of a multi-purpose
voucher is a means of payment: the receipt keeps its goods and VAT and the amount is a
payment of method "other" (FURS has no voucher payment type).

Atomic: the amount is planned before the receipt is numbered, and the receipt's
transaction (BEGIN IMMEDIATE, store.transaction) reads the balance again and records the
use (``ticket_uses``, shared with a gate on the same device) with its ``ticket.used``
event; if the balance dropped meanwhile (another till) the whole receipt is rolled back
and refused. ``till_voucher_pays`` remembers the amount per sale key, so a retried sale
states the same payment and gets the same receipt back. The code is never stored or sent.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.pos.money import fmt_amount
from agent.store.local_store import LocalStore
from agent.store.outbox import Outbox
from agent.store.tickets import record_use, ticket_use
from contracts.reasons import Reason
from contracts.ticket_events import TICKET_USED, TicketUsed
from contracts.ticket_token import TicketKind, TicketRejected, TicketToken, verify_ticket

_TABLE = ("CREATE TABLE IF NOT EXISTS till_voucher_pays (idempotency_key TEXT PRIMARY KEY, "
          "ticket_id TEXT NOT NULL, amount_cents INTEGER NOT NULL, invoice_id TEXT NOT NULL, "
          "left_before_cents INTEGER NOT NULL)")

_REASONS = {Reason.WRONG_ZONE: "voucher_other_site", Reason.EXPIRED: "voucher_expired",
            Reason.NOT_YET_VALID: "voucher_not_yet_valid"}


class VoucherRefused(Exception):
    """The voucher cannot pay; ``problem`` is a code the page translates."""

    def __init__(self, problem: str, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem  # voucher_forged | voucher_other_site | voucher_expired | ...
        self.detail = detail


class VoucherPay:
    def __init__(self, store: LocalStore, outbox: Outbox, tenant_key: Ed25519PublicKey,
                 site: str) -> None:
        self.store = store
        self.outbox = outbox
        self.tenant_key = tenant_key
        self.site = site
        with store.transaction() as conn:
            conn.execute(_TABLE)

    def verify(self, code: str, now_s: int) -> TicketToken:
        """The voucher's token; raises VoucherRefused (forged, another site, expired...)."""
        try:
            token = verify_ticket(code.strip(), self.tenant_key, now_s, self.site)
        except TicketRejected as exc:
            raise VoucherRefused(_REASONS.get(exc.reason, "voucher_forged"), str(exc)) from None
        if token.kind is not TicketKind.VALUE_VOUCHER:
            raise VoucherRefused("voucher_no_value", "the code is a ticket, not a value voucher")
        return token

    def _balance(self, conn: sqlite3.Connection, token: TicketToken) -> int:
        use = ticket_use(conn, token.ticket_id, self.outbox.device)
        if use.revoked:
            raise VoucherRefused("voucher_revoked", "the voucher was refunded or cancelled")
        left = token.value_cents - use.value_used_cents
        if left <= 0:
            raise VoucherRefused("voucher_used_up", "nothing is left on the voucher")
        return left

    def available(self, token: TicketToken, key: str) -> int:
        """The voucher's balance now (or before the retried sale ``key`` spent it, so a
        retry states the same payment)."""
        with self.store.lock:
            row = self.store.conn.execute(
                "SELECT ticket_id, left_before_cents FROM till_voucher_pays WHERE "
                "idempotency_key = ?", (key,)).fetchone()
            if row is not None and row[0] == token.ticket_id:
                return int(row[1])
            return self._balance(self.store.conn, token)

    def writer(self, token: TicketToken, amount: int, key: str
               ) -> Callable[[sqlite3.Connection, str, datetime], None]:
        """What the receipt's transaction runs: the balance again, the use, the event."""
        def write(conn: sqlite3.Connection, invoice_id: str, now: datetime) -> None:
            left = self._balance(conn, token)
            if left < amount:
                raise VoucherRefused("voucher_balance_changed", "the voucher was spent "
                                     "meanwhile; scan it again")
            record_use(conn, token.ticket_id, 0, amount, token.valid_to,
                       int(now.timestamp() * 1000))
            conn.execute("INSERT INTO till_voucher_pays VALUES (?, ?, ?, ?, ?)",
                         (key, token.ticket_id, amount, invoice_id, left))
            used = TicketUsed(ticket_id=token.ticket_id, where="till", entries=0,
                              amount_cents=amount, entries_left=0,
                              value_left_cents=left - amount, receipt=invoice_id)
            self.outbox.append(conn, TICKET_USED, used.to_data(), now)
        return write


def receipt_note(token: TicketToken, balance: int, paid: int) -> str:
    """The line the receipt prints about the voucher (the code itself never)."""
    return (f"Darilni bon {token.ticket_id[:8]}: plačano {fmt_amount(paid)} EUR, "
            f"ostane {fmt_amount(balance - paid)} EUR")
