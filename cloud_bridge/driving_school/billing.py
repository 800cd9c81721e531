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
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from sqlalchemy import Connection, func, insert, select, update

from cloud_bridge.driving_school.schema import documents, prices
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
    if refers_to is not None and conn.execute(select(documents.c.id).where(
            documents.c.tenant == tenant, documents.c.id == refers_to,
            documents.c.kind == "invoice")).first() is None:
        raise Invalid("a credit note refers to an invoice of this school")
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


def add_price(conn: Connection, tenant: str, name: str, price_cents: int, vat: str) -> int:
    """A new entry of the price list (checked as a document line of one piece)."""
    DocLine(name, 1, price_cents, vat)
    return int(conn.execute(insert(prices).values(
        tenant=tenant, name=name, price_cents=price_cents, vat=vat, active=True)
        .returning(prices.c.id)).scalar_one())


def toggle_price(conn: Connection, tenant: str, price_id: int) -> bool:
    """Take an item out of the price list or offer it again (documents issued keep
    their lines); False if the tenant has no such item."""
    row = conn.execute(select(prices.c.active).where(
        prices.c.tenant == tenant, prices.c.id == price_id)).first()
    if row is None:
        return False
    conn.execute(update(prices).where(prices.c.tenant == tenant, prices.c.id == price_id)
                 .values(active=not row.active))
    return True


def price_list(conn: Connection, tenant: str, *, active_only: bool = False
               ) -> list[dict[str, Any]]:
    stmt = select(prices).where(prices.c.tenant == tenant)
    if active_only:
        stmt = stmt.where(prices.c.active.is_(True))
    return [dict(r) for r in conn.execute(stmt.order_by(prices.c.name)).mappings()]


def documents_of(conn: Connection, tenant: str, year: int | None = None,
                 limit: int = 500) -> list[dict[str, Any]]:
    """The tenant's documents, newest first (of one year if given)."""
    stmt = select(documents).where(documents.c.tenant == tenant)
    if year is not None:
        stmt = stmt.where(documents.c.year == year)
    return [dict(r) for r in conn.execute(
        stmt.order_by(documents.c.created_ms.desc(), documents.c.id.desc()).limit(limit)
    ).mappings()]


def one_document(conn: Connection, tenant: str, doc_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(documents).where(
        documents.c.tenant == tenant, documents.c.id == doc_id)).mappings().first()
    return dict(row) if row is not None else None


def vars_of(line: DocLine) -> dict[str, Any]:
    return {"name": line.name, "quantity": line.quantity,
            "unit_price_cents": line.unit_price_cents, "vat": line.vat}


def split_vat(gross_cents: int, rate: str) -> tuple[int, int]:
    """(base, VAT) of a gross amount, VAT = gross - round(gross / (1 + rate)); exempt:
    all base."""
    if rate == "exempt":
        return gross_cents, 0
    factor = Decimal(1) + Decimal(rate) / 100
    base = int((Decimal(gross_cents) / factor).quantize(Decimal(1), ROUND_HALF_UP))
    return base, gross_cents - base


def vat_summary(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Per VAT rate: rate, base, VAT and gross in cents (negative for a credit note)."""
    sign = -1 if doc["total_cents"] < 0 else 1
    per_rate: dict[str, int] = defaultdict(int)
    for ln in doc["lines"]:
        per_rate[ln["vat"]] += sign * ln["quantity"] * ln["unit_price_cents"]
    out = []
    for rate, gross in sorted(per_rate.items()):
        base, vat = split_vat(gross, rate)
        out.append({"vat": rate, "base_cents": base, "vat_cents": vat, "gross_cents": gross})
    return out


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
        # (at least 8 characters, as the POS requires, whatever the tenant's id)
        "idempotency_key": f"ds-{doc['tenant']}-document-{doc['id']}",
        "operator": {"name": operator_name[:40], "tax_number": operator_tax_number},
        "lines": [{"name": ln["name"], "quantity": str(ln["quantity"]),
                   "unit_price": _eur(ln["unit_price_cents"]), "vat": ln["vat"]}
                  for ln in doc["lines"]],
        "payments": [{"method": doc["payment"], "amount": _eur(doc["total_cents"])}],
        "totals": {"total": _eur(doc["total_cents"])},
        "note": doc_number(doc),
    }


def refund_job(credit: dict[str, Any], invoice: dict[str, Any], operator_name: str,
               operator_tax_number: int) -> dict[str, Any]:
    """The POS ``refund`` job of a credit note paid back in cash or by card: its lines
    as lines of the invoice's receipt (same name, price and rate), so the till refunds
    them with a reference to that receipt (FURS R_3.14)."""
    if credit["kind"] != "credit_note" or credit["payment"] not in POS_PAYMENTS:
        raise Invalid("only a credit note paid back in cash or by card goes to the till")
    if credit["refers_to"] != invoice["id"] or not invoice.get("fiscal_invoice_id"):
        raise Invalid("the invoice it corrects has no receipt at the till")
    picks = []
    for ln in credit["lines"]:
        index = next((i for i, orig in enumerate(invoice["lines"])
                      if (orig["name"], orig["unit_price_cents"], orig["vat"])
                      == (ln["name"], ln["unit_price_cents"], ln["vat"])), None)
        if index is None:
            raise Invalid(f"{ln['name']!r} is not on the invoice it corrects")
        picks.append({"line": index, "quantity": str(ln["quantity"])})
    return {
        "idempotency_key": f"ds-{credit['tenant']}-document-{credit['id']}",
        "original": invoice["fiscal_invoice_id"],
        "operator": {"name": operator_name[:40], "tax_number": operator_tax_number},
        "lines": picks, "method": credit["payment"], "note": doc_number(credit),
    }
