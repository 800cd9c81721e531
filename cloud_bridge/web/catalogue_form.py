"""The till product form: name, barcode, price in euros with cents, the VAT rate (one of
the Slovenian rates of contracts/till_catalogue.py) and a category, checked with the
same limits the device's catalogue contract sets."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from cloud_bridge.catalogue.store import ProductFields, StoredProduct, TicketFields
from cloud_bridge.web.form_errors import FieldErrors, validate_form
from cloud_bridge.web.plan_form import parse_cents
from contracts.i18n import N_, format_money, format_number
from contracts.i18n import gettext as _
from contracts.till_catalogue import MAX_TICKET_DAYS, VAT_RATES

NAME_MAX = 100
CATEGORY_MAX = 40
BARCODE_PATTERN = r"^[0-9A-Za-z]{4,32}$"
PRICE_MAX_CENTS = 100_000_00  # 100.000,00 €
EXEMPT = N_("exempt")
NOT_SUBJECT = N_("not subject to VAT")  # a multi-purpose voucher's sale (docs/pos.md)


TICKET_KINDS = (("", N_("Not a ticket")), ("day", N_("Day ticket or pass")),
                ("entries", N_("Voucher for a number of entries")),
                ("value", N_("Gift voucher with a value")))


def ticket_options() -> list[tuple[str, str]]:
    return [(kind, _(label)) for kind, label in TICKET_KINDS]


def _whole(value: str, low: int, high: int) -> int:
    if not value.isdigit() or not low <= int(value) <= high:
        raise ValueError(_("Enter a whole number from %(low)s to %(high)s.")
                         % {"low": low, "high": high})
    return int(value)


def vat_label(rate: str) -> str:
    """A receipt line's or product's VAT as staff read it: "9,5 %", "oproščeno", …"""
    if rate == "exempt":
        return _(EXEMPT)
    if rate == "not_subject":
        return _(NOT_SUBJECT)
    try:
        return f"{format_number(Decimal(rate))} %"
    except ArithmeticError:  # a code from a newer device: shown as it came
        return rate


def vat_options() -> list[tuple[str, str]]:
    return [(rate, vat_label(rate)) for rate in VAT_RATES]


class ProductForm(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")

    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
    barcode: Annotated[str, Field(max_length=32)] = ""
    price: int
    vat: str
    category: Annotated[str, Field(max_length=CATEGORY_MAX)] = ""
    # a ticket or voucher product (issue 22 part 6); checked only for a ticket kind
    ticket_kind: str = ""
    ticket_entries: Annotated[str, Field(max_length=8)] = ""
    ticket_days: Annotated[str, Field(max_length=8)] = ""
    ticket_value: Annotated[str, Field(max_length=12)] = ""

    @field_validator("ticket_kind")
    @classmethod
    def _ticket_kind(cls, value: str) -> str:
        if value not in dict(TICKET_KINDS):
            raise ValueError(_("Choose one of the offered options."))
        return value

    @field_validator("ticket_entries")
    @classmethod
    def _ticket_entries(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("ticket_kind") in ("day", "entries"):
            _whole(value, 1, 0xFFFF)
        return value

    @field_validator("ticket_days")
    @classmethod
    def _ticket_days(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("ticket_kind"):
            _whole(value, 1, MAX_TICKET_DAYS)
        return value

    @field_validator("ticket_value")
    @classmethod
    def _ticket_value(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("ticket_kind") == "value":
            cents = parse_cents(value)
            if not 0 < cents <= PRICE_MAX_CENTS:
                raise ValueError(_("Enter at most %(amount)s.")
                                 % {"amount": format_money(PRICE_MAX_CENTS)})
        return value

    def ticket(self) -> TicketFields | None:
        kind = self.ticket_kind
        if not kind:
            return None
        return TicketFields(kind, int(self.ticket_entries) if kind != "value" else 0,
                            int(self.ticket_days),
                            parse_cents(self.ticket_value) if kind == "value" else 0)

    @field_validator("barcode")
    @classmethod
    def _barcode(cls, value: str) -> str:
        if value and not (4 <= len(value) <= 32 and value.isascii() and value.isalnum()):
            raise ValueError(_("A barcode is 4 to 32 digits or letters, for example "
                               "3830001234567."))
        return value

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, value: Any) -> int:
        cents = parse_cents(str(value or ""))
        if cents > PRICE_MAX_CENTS:
            raise ValueError(_("Enter at most %(amount)s.")
                             % {"amount": format_money(PRICE_MAX_CENTS)})
        return cents

    @field_validator("vat")
    @classmethod
    def _vat(cls, value: str) -> str:
        if value not in VAT_RATES:
            raise ValueError(_("Choose one of the offered options."))
        return value


def check_product(form: dict[str, str]) -> tuple[ProductFields | None, FieldErrors]:
    """The product's fields, or the messages to show beside the form's fields."""
    product, errors = validate_form(ProductForm, form)
    if product is None:
        return None, errors
    return ProductFields(product.name, product.barcode or None, product.price, product.vat,
                         product.category, product.ticket()), {}


def form_values(product: StoredProduct) -> dict[str, str]:
    """A stored product as the form shows it (the price with a decimal comma)."""
    f = product.fields
    whole, cents = divmod(f.price_cents, 100)
    values = {"name": f.name, "barcode": f.barcode or "", "price": f"{whole},{cents:02d}",
              "vat": f.vat, "category": f.category}
    t = f.ticket
    if t is not None:
        whole, cents = divmod(t.value_cents, 100)
        values |= {"ticket_kind": t.kind, "ticket_days": str(t.valid_days),
                   "ticket_entries": str(t.entries) if t.kind != "value" else "",
                   "ticket_value": f"{whole},{cents:02d}" if t.kind == "value" else ""}
    return values
