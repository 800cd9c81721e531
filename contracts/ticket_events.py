"""The events a printed ticket or voucher leaves in a device's outbox (contracts/events.py).

A till that sells one writes ``ticket.issued`` in the same transaction as the receipt; a
gate or till that accepts one writes ``ticket.used`` in the same transaction as the
decision or the sale. The bridge builds its ledger (balance, liabilities, refunds) from
these and from its own issues, keyed by ``ticket_id`` (the UUID inside the signed code),
so a use counted offline is never lost or counted twice (events are exactly-once).
The code itself is a bearer document and never travels in an event.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from contracts.ticket_token import TicketKind

TICKET_ISSUED = "ticket.issued"
TICKET_USED = "ticket.used"


@dataclass(frozen=True, slots=True)
class TicketIssued:
    ticket_id: str
    kind: TicketKind
    site: str | None
    valid_from: int
    valid_to: int
    entries: int
    value_cents: int
    price_cents: int  # what the buyer paid (0 for a free ticket)
    receipt: str | None  # the fiscal receipt's invoice number that sold it, if any
    issuer: str  # "tenant" or the hex SHA-256 of the till's issuer key

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = int(self.kind)
        return data

    @staticmethod
    def from_data(data: dict[str, Any]) -> TicketIssued:
        return TicketIssued(
            ticket_id=str(data["ticket_id"]), kind=TicketKind(int(data["kind"])),
            site=None if data.get("site") is None else str(data["site"]),
            valid_from=int(data["valid_from"]), valid_to=int(data["valid_to"]),
            entries=int(data["entries"]), value_cents=int(data["value_cents"]),
            price_cents=int(data["price_cents"]),
            receipt=None if data.get("receipt") is None else str(data["receipt"]),
            issuer=str(data["issuer"]))


@dataclass(frozen=True, slots=True)
class TicketUsed:
    ticket_id: str
    where: Literal["gate", "till"]
    entries: int  # entries taken by this use (gate: 1)
    amount_cents: int  # money taken from a value voucher by this use
    # what this device still counts as left after the use (its own view, offline)
    entries_left: int
    value_left_cents: int
    receipt: str | None = None  # the till receipt it paid towards

    def to_data(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_data(data: dict[str, Any]) -> TicketUsed:
        where = str(data["where"])
        if where not in ("gate", "till"):
            raise ValueError(f"ticket used at {where!r}")
        return TicketUsed(
            ticket_id=str(data["ticket_id"]), where="gate" if where == "gate" else "till",
            entries=int(data["entries"]), amount_cents=int(data["amount_cents"]),
            entries_left=int(data["entries_left"]),
            value_left_cents=int(data["value_left_cents"]),
            receipt=None if data.get("receipt") is None else str(data["receipt"]))


TICKET_VOIDED = "ticket.voided"


@dataclass(frozen=True, slots=True)
class TicketVoided:
    """A device voided a ticket it sold: its receipt line was refunded at the till. The
    device refuses the code at once; the bridge marks it refunded and tells the others."""

    ticket_id: str
    receipt: str  # the refund receipt's invoice number
    original: str  # the receipt that sold the ticket

    def to_data(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_data(data: dict[str, Any]) -> TicketVoided:
        return TicketVoided(ticket_id=str(data["ticket_id"]), receipt=str(data["receipt"]),
                            original=str(data["original"]))
