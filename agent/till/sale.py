"""A sale rung up on the till -> a print job for the receipt service.

The page sends product ids, quantities and discounts; prices and VAT rates come from the
catalogue on the device (never from the page), discounts need the cashier's permission,
and the totals the job states are the ones the receipt service computes (compose.py),
so the stated total and the printed total cannot differ."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from agent.pos.compose import computed_total_cents
from agent.pos.errors import JobRejected
from agent.pos.job import money_value, parse_job, quantity_value
from agent.pos.money import VatRate, euros
from agent.till.cashiers import Session
from agent.till.catalogue import Catalogue, Product
from contracts.ticket_token import TicketKind

Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TillLine(_Strict):
    product: str = Field(min_length=1, max_length=40)
    quantity: Annotated[Decimal, BeforeValidator(quantity_value)]
    discount_percent: Percent | None = None


class TillPayment(_Strict):
    method: Literal["cash", "card"]
    # cash: what the customer handed over (change = given - total); card: ignored
    given: Annotated[Decimal, BeforeValidator(money_value)] | None = None
    # a value voucher's printed code (ET1...): it pays what it can, the method the rest
    voucher: str | None = Field(default=None, min_length=3, max_length=400)


class TillSaleRequest(_Strict):
    idempotency_key: str = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    lines: list[TillLine] = Field(min_length=1, max_length=500)
    receipt_discount_percent: Percent | None = None
    payment: TillPayment


class NotPermitted(Exception):
    def __init__(self, permission: str) -> None:
        super().__init__(permission)
        self.permission = permission


def parse_sale(raw: Any) -> TillSaleRequest:
    try:
        return TillSaleRequest.model_validate(raw)
    except ValidationError as exc:
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]]
        raise JobRejected("invalid_sale", "; ".join(parts)) from None


def line_rate(product: Product) -> VatRate:
    """A value voucher is a multi-purpose voucher: its sale is not subject to VAT (the
    goods it is spent on are taxed then); a day ticket or entry voucher is single-purpose
    and keeps the catalogue's rate (docs/pos.md, "Gift vouchers and VAT")."""
    if product.ticket is not None and product.ticket.kind is TicketKind.VALUE_VOUCHER:
        return VatRate.NOT_SUBJECT
    return product.rate


def _job_lines(req: TillSaleRequest, catalogue: Catalogue) -> list[dict[str, Any]]:
    lines = []
    for i, ln in enumerate(req.lines):
        product = catalogue.products.get(ln.product)
        if product is None:
            raise JobRejected("unknown_product", f"lines.{i}: no product '{ln.product}' in "
                                                 f"catalogue version {catalogue.version}")
        # a receipt discount is given on every line, so the per-rate VAT stays exact
        percent = ln.discount_percent or req.receipt_discount_percent
        line: dict[str, Any] = {"name": product.name, "quantity": str(ln.quantity),
                                "unit_price": str(euros(product.price_cents)),
                                "vat": line_rate(product).value}
        if percent:
            line["discount_percent"] = str(percent)
        lines.append(line)
    return lines


def build_job(req: TillSaleRequest, session: Session, catalogue: Catalogue,
              voucher_cents: int = 0) -> dict[str, Any]:
    """The print job of a till sale; ``voucher_cents`` is what a value voucher can pay
    (it pays min(that, total) as method "other"); raises NotPermitted or JobRejected."""
    discounted = req.receipt_discount_percent or any(ln.discount_percent for ln in req.lines)
    if discounted and not session.cashier.may_discount:
        raise NotPermitted("discount")
    cashier = session.cashier
    job: dict[str, Any] = {
        "idempotency_key": req.idempotency_key,
        "operator": {"name": cashier.name, "tax_number": cashier.tax_number},
        "lines": _job_lines(req, catalogue),
        "payments": [{"method": "cash", "amount": "0"}], "totals": {"total": "0"}}
    total = computed_total_cents(parse_job(job))
    by_voucher = min(voucher_cents, total)
    payments = [{"method": "other", "amount": str(euros(by_voucher))}] if by_voucher else []
    rest = total - by_voucher
    if req.payment.method == "cash" and (rest or req.payment.given):
        given = req.payment.given if req.payment.given is not None else euros(rest)
        if given < euros(rest):
            raise JobRejected("not_enough_cash", f"given {given} is less than the "
                                                 f"{euros(rest)} due")
        payments.append({"method": "cash", "amount": str(given)})
    elif req.payment.method == "card" and rest:
        payments.append({"method": "card", "amount": str(euros(rest))})
    if not payments:  # a zero total
        payments = [{"method": req.payment.method, "amount": "0"}]
    return {**job, "payments": payments, "totals": {"total": str(euros(total))}}
