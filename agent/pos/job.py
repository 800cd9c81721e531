"""The print job as it arrives from a POS (HTTP) or the MQTT command handler: pydantic.

Amounts and quantities are decimal strings ("12.50") or integers; JSON floats are refused
so that 0.1 + 0.2 never reaches a receipt. Everything else about the sale (VAT rates,
discounts, totals) is checked in compose.py, which knows the arithmetic."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from agent.pos.errors import JobRejected

_MONEY_RE = re.compile(r"^\d{1,10}(\.\d{1,2})?$")
_QTY_RE = re.compile(r"^-?\d{1,7}(\.\d{1,3})?$")


def money_value(value: Any) -> Decimal:
    if isinstance(value, bool | float):
        raise ValueError("give amounts as strings like \"12.50\" (JSON floats are refused)")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not _MONEY_RE.match(value.strip()):
        raise ValueError("must be a non-negative amount with at most 2 decimals, e.g. \"12.50\"")
    return Decimal(value.strip())


def quantity_value(value: Any) -> Decimal:
    if isinstance(value, bool | float):
        raise ValueError("give quantities as strings like \"0.250\" (JSON floats are refused)")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not _QTY_RE.match(value.strip()):
        raise ValueError("must be a number with at most 3 decimals, e.g. \"1\" or \"0.250\"")
    try:
        qty = Decimal(value.strip())
    except InvalidOperation:
        raise ValueError("is not a number") from None
    if qty <= 0:
        raise ValueError("must be greater than 0 (returns and storno are not print jobs)")
    return qty


Money = Annotated[Decimal, BeforeValidator(money_value)]
Quantity = Annotated[Decimal, BeforeValidator(quantity_value)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JobLine(_Strict):
    name: str = Field(min_length=1, max_length=100)
    quantity: Quantity
    unit_price: Money
    vat: str = Field(min_length=1, max_length=16,
                     description="22, 9.5, 5, exempt or not_subject (a multi-purpose voucher)")
    discount: Money | None = None
    discount_percent: Annotated[Decimal, Field(ge=0, le=100, max_digits=5,
                                               decimal_places=2)] | None = None
    unit: str = Field(default="", max_length=8)

    @model_validator(mode="after")
    def _one_discount(self) -> JobLine:
        if self.discount is not None and self.discount_percent is not None:
            raise ValueError("give either discount or discount_percent, not both")
        return self


class JobPayment(_Strict):
    method: Literal["cash", "card", "other"]
    amount: Money


class JobOperator(_Strict):
    name: str = Field(min_length=1, max_length=40)
    tax_number: int | None = Field(default=None, ge=10_000_000, le=99_999_999)
    foreign: bool = False

    @model_validator(mode="after")
    def _identified(self) -> JobOperator:
        # FURS R_3.10/R_3.11: the operator's Slovenian tax number, or ForeignOperator=true
        if (self.tax_number is None) != self.foreign:
            raise ValueError("give the operator's 8-digit tax_number, or foreign=true when "
                             "the operator has no Slovenian tax number (not both)")
        return self


class JobTotals(_Strict):
    """What the POS showed the customer; refused when it does not match the lines."""

    total: Money
    vat: dict[str, Money] | None = Field(default=None,
                                         description="stated VAT per rate, e.g. {\"22\": \"1.80\"}")


# a ticket or voucher code (contracts/ticket_token.py): "ET1" + RFC 4648 base32 without
# padding, 170 characters when the bridge signed it, 330 when a till did (version 11 QR)
_TICKET_CODE_RE = re.compile(r"^ET1[A-Z2-7]{167,327}$")
TICKET_CODE_LENGTHS = (170, 330)
MAX_JOB_TICKETS = 5


def ticket_code(value: Any) -> str:
    if not isinstance(value, str) or not _TICKET_CODE_RE.match(value) \
            or len(value) not in TICKET_CODE_LENGTHS:
        # never echo the value: it may be a valid code a typo away
        raise ValueError("is not a ticket code: \"ET1\" and base32 (A-Z, 2-7), 170 or 330 "
                         "characters in all")
    return value


class JobTicket(_Strict):
    """A ticket or voucher printed as a QR code under the receipt's FURS code. The POS
    checks only its form (it has no key to verify it); gates and tills verify it."""

    code: Annotated[str, BeforeValidator(ticket_code)]
    label: str = Field(min_length=1, max_length=60)

    def __repr__(self) -> str:  # the code is a bearer credential: never in a log
        return f"JobTicket(label={self.label!r})"

    __str__ = __repr__


class PrintJobRequest(_Strict):
    idempotency_key: str = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    operator: JobOperator
    lines: list[JobLine] = Field(min_length=1, max_length=500)
    payments: list[JobPayment] = Field(min_length=1, max_length=10)
    totals: JobTotals
    prices_include_vat: bool = True
    customer_vat_number: str | None = Field(default=None, min_length=1, max_length=20)
    note: str | None = Field(default=None, max_length=200)
    tickets: list[JobTicket] = Field(default_factory=list, max_length=MAX_JOB_TICKETS)


def parse_job(raw: Any) -> PrintJobRequest:
    """Validate a decoded JSON job; errors become one JobRejected naming every field."""
    if isinstance(raw, PrintJobRequest):
        return raw
    try:
        return PrintJobRequest.model_validate(raw)
    except ValidationError as exc:
        parts = []
        for err in exc.errors()[:10]:
            loc = ".".join(str(p) for p in err["loc"]) or "(job)"
            parts.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
        raise JobRejected("invalid_job", "; ".join(parts)) from None
