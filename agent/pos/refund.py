"""A refund (or correction) receipt: the chosen lines of an earlier receipt with negative
quantities and amounts, and a reference to that receipt (FURS spec v3.2 R_3.14
ReferenceInvoice, R_3.15 ReferenceInvoiceIssueDateTime).

Partial refunds: any quantity up to what is left of a line after earlier refunds of the
same receipt. A line's refunded amount is its share of what the customer paid for the
line (discount included), half-up to the cent; refunding a whole line gives back exactly
its amount. VAT is computed per rate like on a sale (compose.rate_totals); half-up
rounding is symmetric around zero, so a full refund has exactly the negated VAT."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.pos.compose import nontaxable_cents, rate_totals
from agent.pos.errors import JobRejected
from agent.pos.job import JobOperator, Quantity
from agent.pos.model import (
    Line,
    Operator,
    Payment,
    PaymentMethod,
    Reference,
    Sale,
    Totals,
)
from agent.pos.money import CENT, round_cents


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RefundLine(_Strict):
    line: int = Field(ge=0, le=499, description="index of the line on the original receipt")
    quantity: Quantity


class RefundRequest(_Strict):
    idempotency_key: str = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    original: str = Field(min_length=5, max_length=64, description="e.g. P1-BLAG1-42")
    operator: JobOperator
    lines: list[RefundLine] = Field(min_length=1, max_length=500)
    method: PaymentMethod = PaymentMethod.CASH
    note: str | None = Field(default=None, max_length=200)


def parse_refund(raw: Any) -> RefundRequest:
    if isinstance(raw, RefundRequest):
        return raw
    try:
        return RefundRequest.model_validate(raw)
    except ValidationError as exc:
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]]
        raise JobRejected("invalid_refund", "; ".join(parts)) from None


def refund_sale(req: RefundRequest, original: Sale, original_issued_at: str,
                refunded: dict[int, Decimal]) -> Sale:
    """The refund of ``req.lines`` of ``original``; ``refunded`` is what earlier refunds
    of the same receipt already gave back, per line index."""
    if original.reference is not None:
        raise JobRejected("refund_of_refund", f"{req.original} is itself a refund")
    asked: dict[int, Decimal] = {}
    for pick in req.lines:
        asked[pick.line] = asked.get(pick.line, Decimal(0)) + pick.quantity
    lines = []
    for index, qty in sorted(asked.items()):
        if index >= len(original.lines):
            raise JobRejected("unknown_line", f"{req.original} has no line {index}")
        src = original.lines[index]
        left = src.quantity - refunded.get(index, Decimal(0))
        if qty > left:
            raise JobRejected("refund_too_large", f"line {index} ({src.name}): {qty} asked, "
                                                  f"only {left} left to refund")
        gross = -round_cents(qty * Decimal(src.unit_price_cents) * CENT)
        total = -round_cents(Decimal(src.total_cents) * CENT * qty / src.quantity)
        lines.append(Line(src.name, -qty, src.unit_price_cents, gross - total, src.rate,
                          total, src.unit))
    rates, exempt, total = rate_totals(tuple(lines), original.prices_include_vat)
    op = req.operator
    return Sale(lines=tuple(lines), payments=(Payment(req.method, total),),
                totals=Totals(tuple(rates), exempt, total, total, 0,
                              nontaxable_cents(tuple(lines))),
                operator=Operator(op.name, op.tax_number, op.foreign),
                prices_include_vat=original.prices_include_vat,
                customer_vat_number=original.customer_vat_number, note=req.note,
                reference=Reference(req.original, original_issued_at, tuple(sorted(asked))))
