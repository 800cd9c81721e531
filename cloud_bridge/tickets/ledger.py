"""The ticket ledger: issue, balance and state, refund, liabilities (docs/vouchers.md).

Balance and state are derived from the ledger, never stored: a ticket's uses are the
``ticket_uses`` rows (one per ``ticket.used`` event), its state follows from them, its
validity and its refund. Functions run in the caller's transaction; the ones that change
what devices must know return the change record (a ``TicketMark``) to append to the
change log in that transaction.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, func, select, update

from cloud_bridge.errors import Conflict, Invalid, NotFound
from cloud_bridge.tickets.schema import ticket_uses, tickets
from contracts.membership_changes import TicketMark
from contracts.ticket_token import TicketKind, issue_ticket

State = Literal["valid", "not_yet_valid", "used_up", "expired", "refunded"]
STATES: tuple[State, ...] = ("valid", "not_yet_valid", "used_up", "expired", "refunded")
MAX_ENTRIES = 1000
MAX_VALUE_CENTS = 1_000_000  # 10 000 €
MAX_DAYS = 3 * 366


@dataclass(frozen=True, slots=True)
class IssueRequest:
    kind: TicketKind
    valid_from: int  # epoch s
    valid_to: int  # exclusive
    entries: int = 0
    value_cents: int = 0
    price_cents: int = 0
    site: str | None = None
    buyer_email: str | None = None
    label: str = ""

    def check(self) -> None:
        if self.kind is TicketKind.VALUE_VOUCHER:
            if not 0 < self.value_cents <= MAX_VALUE_CENTS or self.entries:
                raise Invalid("a value voucher carries an amount of 0,01 to 10 000 € and "
                              "no entries")
        elif not 0 < self.entries <= MAX_ENTRIES or self.value_cents:
            raise Invalid(f"a ticket carries 1 to {MAX_ENTRIES} entries and no amount")
        if not 0 <= self.price_cents <= MAX_VALUE_CENTS:
            raise Invalid("the price must be 0 to 10 000 €")
        if not 0 < self.valid_from < self.valid_to <= self.valid_from + MAX_DAYS * 86400:
            raise Invalid(f"valid to must be after valid from, at most {MAX_DAYS} days")
        if self.buyer_email is not None and "@" not in self.buyer_email:
            raise Invalid("the buyer's e-mail address has no @")


@dataclass(frozen=True, slots=True)
class Balance:
    entries_used: int
    value_used_cents: int
    entries_left: int
    value_left_cents: int
    state: State


def issue(conn: Connection, tenant: str, signer: Ed25519PrivateKey, req: IssueRequest,
          now_ms: int | None = None) -> tuple[dict[str, Any], str]:
    """A new tenant-signed ticket in the ledger; (its row, its code)."""
    req.check()
    row = {"tenant": tenant, "id": str(uuid.uuid4()), "kind": int(req.kind), "site": req.site,
           "valid_from": req.valid_from, "valid_to": req.valid_to, "entries": req.entries,
           "value_cents": req.value_cents, "price_cents": req.price_cents, "receipt": None,
           "issuer": "tenant", "source": "bridge", "buyer_email": req.buyer_email,
           "label": req.label[:80], "refunded_ms": None, "refund_note": None,
           "sale_device": None, "sale_request": None,
           "created_ms": now_ms if now_ms is not None else int(time.time() * 1000)}
    conn.execute(tickets.insert().values(**row))
    return row, code_for(row, signer)


def code_for(row: dict[str, Any], signer: Ed25519PrivateKey) -> str:
    """The printed code of a bridge-issued ticket, signed again (Ed25519 is deterministic,
    so it is the very code first printed). A till-issued code exists only on its paper."""
    if row["issuer"] != "tenant":
        raise Conflict("this ticket was issued by a till: its code is only on its receipt")
    return issue_ticket(signer, kind=TicketKind(row["kind"]), ticket_id=row["id"],
                        valid_from=int(row["valid_from"]), valid_to=int(row["valid_to"]),
                        entries=int(row["entries"]), value_cents=int(row["value_cents"]),
                        site_id=row["site"])


def get_ticket(conn: Connection, tenant: str, ticket_id: str) -> dict[str, Any]:
    row = conn.execute(select(tickets).where(tickets.c.tenant == tenant,
                                             tickets.c.id == ticket_id)).mappings().first()
    if row is None:
        raise NotFound(f"no ticket {ticket_id!r}")
    return dict(row)


def _used(conn: Connection, tenant: str, ids: list[str]) -> dict[str, tuple[int, int]]:
    """(entries, cents) used per ticket, in chunks (SQLite limits bound parameters)."""
    out: dict[str, tuple[int, int]] = {}
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            select(ticket_uses.c.ticket_id, func.sum(ticket_uses.c.entries),
                   func.sum(ticket_uses.c.amount_cents))
            .where(ticket_uses.c.tenant == tenant,
                   ticket_uses.c.ticket_id.in_(ids[start:start + 500]))
            .group_by(ticket_uses.c.ticket_id)).all()
        out.update({str(t): (int(e or 0), int(a or 0)) for t, e, a in rows})
    return out


def balance_of(row: dict[str, Any], entries_used: int, value_used: int,
               now_s: int) -> Balance:
    entries_left = max(int(row["entries"]) - entries_used, 0)
    value_left = max(int(row["value_cents"]) - value_used, 0)
    state: State
    if row["refunded_ms"] is not None:
        state = "refunded"
    elif now_s >= int(row["valid_to"]):
        state = "expired"
    elif (entries_left if int(row["kind"]) != TicketKind.VALUE_VOUCHER else value_left) <= 0:
        state = "used_up"
    elif now_s < int(row["valid_from"]):
        state = "not_yet_valid"
    else:
        state = "valid"
    return Balance(entries_used, value_used, entries_left, value_left, state)


def balance(conn: Connection, tenant: str, row: dict[str, Any],
            now_s: int | None = None) -> Balance:
    e, v = _used(conn, tenant, [row["id"]]).get(row["id"], (0, 0))
    return balance_of(row, e, v, int(time.time()) if now_s is None else now_s)


def uses_of(conn: Connection, tenant: str, ticket_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(
        select(ticket_uses).where(ticket_uses.c.tenant == tenant,
                                  ticket_uses.c.ticket_id == ticket_id)
        .order_by(ticket_uses.c.at)).mappings()]


def mark_for(conn: Connection, tenant: str, ticket_id: str, revoked: bool
             ) -> dict[str, Any]:
    """The change record that tells devices the ledger's view of one ticket."""
    rows = conn.execute(
        select(ticket_uses.c.device, func.sum(ticket_uses.c.entries),
               func.sum(ticket_uses.c.amount_cents))
        .where(ticket_uses.c.tenant == tenant, ticket_uses.c.ticket_id == ticket_id)
        .group_by(ticket_uses.c.device)).all()
    valid_to = conn.execute(select(tickets.c.valid_to).where(
        tickets.c.tenant == tenant, tickets.c.id == ticket_id)).scalar()
    mark = TicketMark(entity="ticket", op="upsert", id=ticket_id, revoked=revoked,
                      used_by_device={str(d): int(e) for d, e, _ in rows if int(e or 0) > 0},
                      value_by_device={str(d): int(a) for d, _, a in rows if int(a or 0) > 0},
                      valid_to=None if valid_to is None else int(valid_to))
    return mark.model_dump()


def refund(conn: Connection, tenant: str, ticket_id: str, note: str,
           now_ms: int | None = None) -> dict[str, Any]:
    """Mark refunded (or cancelled) and return the revoking change record. The money goes
    back outside the ledger: a till refund when a fiscal receipt sold it (docs)."""
    row = get_ticket(conn, tenant, ticket_id)
    if row["refunded_ms"] is not None:
        raise Conflict("this ticket is already refunded")
    conn.execute(update(tickets).where(tickets.c.tenant == tenant, tickets.c.id == ticket_id)
                 .values(refunded_ms=now_ms if now_ms is not None else int(time.time() * 1000),
                         refund_note=note[:200] or None))
    return mark_for(conn, tenant, ticket_id, revoked=True)


def list_tickets(conn: Connection, tenant: str, *, state: State | None = None,
                 kind: TicketKind | None = None, limit: int = 200,
                 now_s: int | None = None) -> list[tuple[dict[str, Any], Balance]]:
    """Newest first, with their balance; ``state`` filters on the derived state."""
    now = int(time.time()) if now_s is None else now_s
    stmt = select(tickets).where(tickets.c.tenant == tenant)
    if kind is not None:
        stmt = stmt.where(tickets.c.kind == int(kind))
    if state == "refunded":
        stmt = stmt.where(tickets.c.refunded_ms.is_not(None))
    elif state == "expired":
        stmt = stmt.where(tickets.c.refunded_ms.is_(None), tickets.c.valid_to <= now)
    elif state is not None:
        stmt = stmt.where(tickets.c.refunded_ms.is_(None), tickets.c.valid_to > now)
    rows = [dict(r) for r in conn.execute(
        stmt.order_by(tickets.c.created_ms.desc(), tickets.c.id).limit(limit * 4 if state
                                                                      else limit)).mappings()]
    used = _used(conn, tenant, [r["id"] for r in rows])
    out = [(r, balance_of(r, *used.get(r["id"], (0, 0)), now)) for r in rows]
    return [x for x in out if state is None or x[1].state == state][:limit]


@dataclass(frozen=True, slots=True)
class OpenKind:
    """The tickets of one kind the tenant still owes something on."""

    kind: TicketKind
    tickets: int
    entries_left: int
    owed_cents: int


def open_by_kind(conn: Connection, tenant: str, now_s: int | None = None) -> list[OpenKind]:
    """Per kind, over tickets not refunded, not expired and not used up: how many, their
    unused entries, and what is owed in cents (the unspent value of value vouchers; unused
    entries × price per entry of entry tickets)."""
    now = int(time.time()) if now_s is None else now_s
    rows = [dict(r) for r in conn.execute(select(tickets).where(
        tickets.c.tenant == tenant, tickets.c.refunded_ms.is_(None),
        tickets.c.valid_to > now)).mappings()]
    used = _used(conn, tenant, [r["id"] for r in rows])
    sums: dict[TicketKind, list[int]] = {}
    for r in rows:
        bal = balance_of(r, *used.get(r["id"], (0, 0)), now)
        kind = TicketKind(int(r["kind"]))
        if kind == TicketKind.VALUE_VOUCHER:
            owed, left = bal.value_left_cents, 0
        else:
            left = bal.entries_left
            owed = int(r["price_cents"]) * left // int(r["entries"]) if r["entries"] else 0
        if owed > 0 or left > 0:
            acc = sums.setdefault(kind, [0, 0, 0])
            acc[0], acc[1], acc[2] = acc[0] + 1, acc[1] + left, acc[2] + owed
    return [OpenKind(k, *sums[k]) for k in sorted(sums)]


def voucher_liabilities(conn: Connection, tenant: str, now_s: int | None = None) -> int:
    """What the tenant still owes on sold tickets and vouchers, in cents (``open_by_kind``
    summed)."""
    return sum(x.owed_cents for x in open_by_kind(conn, tenant, now_s))


def snapshot_marks(conn: Connection, tenant: str, now_s: int | None = None
                   ) -> list[dict[str, Any]]:
    """The marks a membership snapshot carries: every unexpired ticket that is refunded
    or has uses (a till-issued ticket the ledger has no row for counts as unexpired)."""
    now = int(time.time()) if now_s is None else now_s
    live = tickets.c.valid_to > now
    revoked = {str(t) for t in conn.execute(select(tickets.c.id).where(
        tickets.c.tenant == tenant, tickets.c.refunded_ms.is_not(None), live)).scalars()}
    used = {str(t) for t, valid_to in conn.execute(
        select(ticket_uses.c.ticket_id, tickets.c.valid_to).distinct()
        .select_from(ticket_uses.outerjoin(tickets, (tickets.c.tenant == ticket_uses.c.tenant)
                                           & (tickets.c.id == ticket_uses.c.ticket_id)))
        .where(ticket_uses.c.tenant == tenant)) if valid_to is None or valid_to > now}
    return [mark_for(conn, tenant, t, t in revoked) for t in sorted(revoked | used)]
