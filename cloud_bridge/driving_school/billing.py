"""The school's money documents: orders, pro-forma invoices, advance invoices, invoices
and credit notes, each numbered per kind, business premise and year without gaps (the
next number is taken in the document's own transaction; the unique key refuses a clash),
and the POS job that fiscalises a cash or card payment.

Fiscal verification is not done here: the bridge does not import the agent (layers). A
cash or card invoice is sent as a ``print`` command (``card_command.send_command``) to
the school's POS device, an agent with ``[pos]`` configured, whose receipt service
(agent/pos) numbers it as a receipt, computes the ZOI, asks FURS for the EOR (or owes it
and submits it later) and prints it; the command's result comes back in ``commands``.
The job's format is the POS's ``PrintJobRequest`` (docs/pos.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Connection, func, insert, select

from cloud_bridge.driving_school.schema import documents
from cloud_bridge.errors import Invalid

Kind = Literal["order", "proforma", "advance", "invoice", "credit_note"]
KINDS: tuple[Kind, ...] = ("order", "proforma", "advance", "invoice", "credit_note")
KIND_CODE = {"order": "N", "proforma": "PR", "advance": "AR", "invoice": "R",
             "credit_note": "D"}
VAT_RATES = ("22", "9.5", "5", "exempt")
POS_PAYMENTS = ("cash", "card")  # paid at the school's till: fiscal verification


@dataclass(frozen=True, slots=True)
class DocLine:
    name: str
    quantity: int
    unit_price_cents: int  # with VAT
    vat: str

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > 100:
            raise Invalid("a line needs a name of at most 100 characters")
        if not 1 <= self.quantity <= 1000 or not 0 <= self.unit_price_cents <= 10_000_000:
            raise Invalid("a line's quantity is 1-1000 and its price 0-100000 EUR")
        if self.vat not in VAT_RATES:
            raise Invalid(f"VAT rate {self.vat!r}: use one of {', '.join(VAT_RATES)}")


def doc_number(row: dict[str, Any]) -> str:
    """2026-P1-R-00012: year, premise, kind, number."""
    return f"{row['year']}-{row['premise']}-{KIND_CODE[row['kind']]}-{row['number']:05d}"


def issue(conn: Connection, tenant: str, kind: Kind, premise: str, candidate_id: int,
          lines: list[DocLine], issued_by: str, year: int, *, payment: str = "",
          refers_to: int | None = None) -> dict[str, Any]:
    """Write the document with the next number of its kind, premise and year."""
    if kind not in KINDS:
        raise Invalid(f"unknown document kind {kind!r}")
    if not lines:
        raise Invalid("a document needs at least one line")
    if (kind == "credit_note") != (refers_to is not None):
        raise Invalid("a credit note, and only a credit note, refers to an invoice")
    total = sum(line.quantity * line.unit_price_cents for line in lines)
    if kind == "credit_note":
        total = -total
    number = int(conn.execute(select(func.coalesce(func.max(documents.c.number), 0)).where(
        documents.c.tenant == tenant, documents.c.kind == kind,
        documents.c.premise == premise, documents.c.year == year)).scalar_one()) + 1
    row = {"tenant": tenant, "kind": kind, "premise": premise, "year": year,
           "number": number, "candidate_id": candidate_id,
           "lines": [vars_of(line) for line in lines], "total_cents": total,
           "refers_to": refers_to, "payment": payment, "issued_by": issued_by,
           "created_ms": int(time.time() * 1000)}
    row["id"] = int(conn.execute(insert(documents).values(**row)
                                 .returning(documents.c.id)).scalar_one())
    return row


def vars_of(line: DocLine) -> dict[str, Any]:
    return {"name": line.name, "quantity": line.quantity,
            "unit_price_cents": line.unit_price_cents, "vat": line.vat}


def _eur(cents: int) -> str:
    return str(Decimal(cents).scaleb(-2).quantize(Decimal("0.01")))


def pos_job(doc: dict[str, Any], operator_name: str, operator_tax_number: int
            ) -> dict[str, Any]:
    """The POS print job for an invoice or advance invoice paid in cash or by card."""
    if doc["kind"] not in ("invoice", "advance") or doc["payment"] not in POS_PAYMENTS:
        raise Invalid("only an invoice or advance invoice paid in cash or by card "
                      "goes through the till")
    return {
        # the same document is fiscalised once, however often the command is resent
        "idempotency_key": f"ds-{doc['tenant']}-{doc['id']}",
        "operator": {"name": operator_name[:40], "tax_number": operator_tax_number},
        "lines": [{"name": ln["name"], "quantity": str(ln["quantity"]),
                   "unit_price": _eur(ln["unit_price_cents"]), "vat": ln["vat"]}
                  for ln in doc["lines"]],
        "payments": [{"method": doc["payment"], "amount": _eur(doc["total_cents"])}],
        "totals": {"total": _eur(doc["total_cents"])},
        "note": doc_number(doc),
    }
