"""The receipt inside the agent: frozen dataclasses, integer cents, Decimal quantities.

Built from a validated job by ``compose.py``; serialised to JSON for the store, the
outbox event and re-rendering (reprint, late EOR)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from agent.pos.money import VatRate


class PaymentMethod(enum.StrEnum):
    CASH = "cash"
    CARD = "card"
    OTHER = "other"

    @property
    def label(self) -> str:
        return {"cash": "Gotovina", "card": "Kartica", "other": "Drugo"}[self.value]


class FiscalState(enum.StrEnum):
    """Where a receipt stands with FURS (queryable per receipt)."""

    PENDING = "pending"  # numbered and stored, first submission not answered yet
    FISCALISED = "fiscalised"  # EOR received
    PENDING_SUBSEQUENT = "pending_subsequent"  # printed without EOR, queued (SubsequentSubmit)
    FAILED_REJECTED = "failed_rejected"  # FURS answered with an error code (S001..S008)


class PrintState(enum.StrEnum):
    PENDING = "pending"  # not printed yet (or the printer failed): will be retried
    PRINTING = "printing"  # sent to the printer, outcome not recorded yet
    PRINTED = "printed"
    # the agent stopped while printing: it may or may not be on paper; never auto-retried
    # (a second original would be a duplicate), an operator reprints a copy if needed
    UNCERTAIN = "uncertain"


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    quantity: Decimal
    unit_price_cents: int
    discount_cents: int
    rate: VatRate
    total_cents: int  # quantity * unit price, rounded half-up, minus the discount
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Payment:
    method: PaymentMethod
    amount_cents: int


@dataclass(frozen=True, slots=True)
class RateTotal:
    rate: VatRate
    base_cents: int
    vat_cents: int

    @property
    def gross_cents(self) -> int:
        return self.base_cents + self.vat_cents


@dataclass(frozen=True, slots=True)
class Totals:
    rates: tuple[RateTotal, ...]  # taxed rates only, highest first
    exempt_cents: int  # FURS ExemptVATTaxableAmount
    total_cents: int  # FURS InvoiceAmount = PaymentAmount (no returns)
    paid_cents: int
    change_cents: int  # given back in cash
    nontaxable_cents: int = 0  # FURS NontaxableAmount (a multi-purpose voucher sold)


@dataclass(frozen=True, slots=True)
class Operator:
    name: str  # printed ("oznaka operaterja")
    tax_number: int | None  # sent to FURS (OperatorTaxNumber), never printed
    foreign: bool = False  # FURS ForeignOperator: no Slovenian tax number


@dataclass(frozen=True, slots=True)
class Reference:
    """The invoice a refund or correction changes (FURS spec v3.2 R_3.14 ReferenceInvoice
    with R_3.14.1-3 its premise, device and number, R_3.15 its issue date and time)."""

    invoice_id: str
    issued_at: str  # local time, YYYY-MM-DDTHH:MM:SS as FURS wants it
    lines: tuple[int, ...] = ()  # for each refund line, its line index on the original


@dataclass(frozen=True, slots=True)
class Sale:
    lines: tuple[Line, ...]
    payments: tuple[Payment, ...]
    totals: Totals
    operator: Operator
    prices_include_vat: bool = True
    customer_vat_number: str | None = None
    note: str | None = None
    reference: Reference | None = None  # set on a refund: negative lines and amounts


@dataclass(frozen=True, slots=True)
class InvoiceId:
    premise: str
    device: str
    number: int

    def __str__(self) -> str:
        # the printed form the spec prescribes: premise-device-sequence (R_3.4)
        return f"{self.premise}-{self.device}-{self.number}"

    @staticmethod
    def parse(text: str) -> InvoiceId:
        parts = text.split("-")
        if len(parts) != 3 or not parts[2].isdigit():
            raise ValueError(f"'{text}' is not an invoice number like P1-BLAG1-42")
        return InvoiceId(parts[0], parts[1], int(parts[2]))


@dataclass(frozen=True, slots=True)
class Receipt:
    """A numbered, protected receipt: everything that is printed and sent to FURS."""

    invoice: InvoiceId
    issued_at: datetime  # aware, in Europe/Ljubljana
    tax_number: int
    numbering_structure: str  # "B": per device
    sale: Sale
    zoi: str
    qr: str  # the 60-digit data record


# -- JSON form (store, outbox, re-rendering) ------------------------------------------------


def sale_to_dict(sale: Sale) -> dict[str, Any]:
    t = sale.totals
    return {
        "lines": [
            {"name": ln.name, "quantity": str(ln.quantity), "unit_price_cents": ln.unit_price_cents,
             "discount_cents": ln.discount_cents, "vat": ln.rate.value,
             "total_cents": ln.total_cents, "unit": ln.unit}
            for ln in sale.lines
        ],
        "payments": [{"method": p.method.value, "amount_cents": p.amount_cents}
                     for p in sale.payments],
        "totals": {
            "rates": [{"vat": r.rate.value, "base_cents": r.base_cents, "vat_cents": r.vat_cents}
                      for r in t.rates],
            "exempt_cents": t.exempt_cents, "total_cents": t.total_cents,
            "paid_cents": t.paid_cents, "change_cents": t.change_cents,
            "nontaxable_cents": t.nontaxable_cents,
        },
        # the operator's tax number is personal data: it goes to FURS, not into events
        "operator": {"name": sale.operator.name, "foreign": sale.operator.foreign},
        "prices_include_vat": sale.prices_include_vat,
        "customer_vat_number": sale.customer_vat_number,
        "note": sale.note,
        **_reference_to_dict(sale),
    }


def _reference_to_dict(sale: Sale) -> dict[str, Any]:
    ref = sale.reference
    if ref is None:
        return {"reference": None}
    # refund_lines (original line index -> quantity given back) is what later refunds of
    # the same receipt count against (receipt_store.refunded_quantities)
    return {"reference": {"invoice_id": ref.invoice_id, "issued_at": ref.issued_at,
                          "lines": list(ref.lines)},
            "refund_lines": {str(i): str(-ln.quantity) for i, ln in zip(ref.lines, sale.lines,
                                                                        strict=True)}}


def sale_from_dict(data: dict[str, Any], operator_tax_number: int | None) -> Sale:
    t = data["totals"]
    return Sale(
        lines=tuple(
            Line(ln["name"], Decimal(ln["quantity"]), ln["unit_price_cents"], ln["discount_cents"],
                 VatRate(ln["vat"]), ln["total_cents"], ln.get("unit", ""))
            for ln in data["lines"]
        ),
        payments=tuple(Payment(PaymentMethod(p["method"]), p["amount_cents"])
                       for p in data["payments"]),
        totals=Totals(
            rates=tuple(RateTotal(VatRate(r["vat"]), r["base_cents"], r["vat_cents"])
                        for r in t["rates"]),
            exempt_cents=t["exempt_cents"], total_cents=t["total_cents"],
            paid_cents=t["paid_cents"], change_cents=t["change_cents"],
            nontaxable_cents=t.get("nontaxable_cents", 0),
        ),
        operator=Operator(data["operator"]["name"], operator_tax_number,
                          data["operator"]["foreign"]),
        prices_include_vat=data["prices_include_vat"],
        customer_vat_number=data.get("customer_vat_number"),
        note=data.get("note"),
        reference=None if not data.get("reference") else
        Reference(data["reference"]["invoice_id"], data["reference"]["issued_at"],
                  tuple(data["reference"]["lines"])),
    )
