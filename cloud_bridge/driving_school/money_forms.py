"""The office's money forms: a price-list entry, a document (kind, business premise,
candidate, up to ``LINE_ROWS`` lines from the price list, payment, the invoice a credit
note corrects) and sending a paid document to the school's till. Validated on the
server with one message per field (``cloud_bridge.web.form_errors``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cloud_bridge.driving_school.billing import KINDS, VAT_RATES, DocLine
from cloud_bridge.param_bounds import RowIdField
from cloud_bridge.web.form_errors import FieldErrors, validate_form
from cloud_bridge.web.plan_form import parse_cents
from contracts.i18n import N_
from contracts.i18n import gettext as _

LINE_ROWS = 4
PRICE_NAME_MAX = 100
PRICE_MAX_CENTS = 10_000_000
QUANTITY_MAX = 1000
PREMISE_PATTERN = r"^[0-9A-Za-z]{1,20}$"
DEVICE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
KIND_LABELS = {"order": N_("Order"), "proforma": N_("Pro-forma invoice"),
               "advance": N_("Advance invoice"), "invoice": N_("Invoice"),
               "credit_note": N_("Credit note")}
PAYMENT_LABELS = {"": N_("not paid yet"), "cash": N_("cash"), "card": N_("card"),
                  "transfer": N_("bank transfer")}


class _Form(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


def _choice(value: str, allowed: Any) -> str:
    if value not in allowed:
        raise ValueError(_("Choose one of the offered options."))
    return value


class PriceForm(_Form):
    name: Annotated[str, Field(min_length=1, max_length=PRICE_NAME_MAX)]
    price: int
    vat: str

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, value: Any) -> int:
        cents = parse_cents(str(value or ""))
        if cents > PRICE_MAX_CENTS:
            raise ValueError(_("Enter at most %(amount)s.") % {"amount": "100.000,00 €"})
        return cents

    @field_validator("vat")
    @classmethod
    def _vat(cls, value: str) -> str:
        return _choice(value, VAT_RATES)


class DocumentHead(_Form):
    kind: str
    premise: Annotated[str, Field(pattern=PREMISE_PATTERN)]
    candidate_id: RowIdField
    payment: str = ""
    refers_to: Annotated[RowIdField | None, Field()] = None

    @field_validator("refers_to", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        return _choice(value, KINDS)

    @field_validator("payment")
    @classmethod
    def _payment(cls, value: str) -> str:
        return _choice(value, PAYMENT_LABELS)


def document_lines(form: Mapping[str, Any], price_list: dict[int, dict[str, Any]]
                   ) -> tuple[list[DocLine], FieldErrors]:
    """The lines chosen in the form's rows ``price_N`` / ``quantity_N``."""
    lines: list[DocLine] = []
    errors: FieldErrors = {}
    for n in range(1, LINE_ROWS + 1):
        price, qty = str(form.get(f"price_{n}", "")).strip(), str(
            form.get(f"quantity_{n}", "")).strip()
        if not price:
            continue
        entry = price_list.get(int(price)) if price.isdigit() and len(price) < 12 else None
        if entry is None:
            errors[f"price_{n}"] = _("Choose one of the offered options.")
            continue
        if not qty.isdigit() or not 1 <= int(qty) <= QUANTITY_MAX:
            errors[f"quantity_{n}"] = _("Enter a whole number from 1 to %(n)s.") % {
                "n": QUANTITY_MAX}
            continue
        lines.append(DocLine(entry["name"], int(qty), entry["price_cents"], entry["vat"]))
    if not lines and not errors:
        errors["price_1"] = _("Choose at least one item from the price list.")
    return lines, errors


def check_document(form: Mapping[str, Any], price_list: dict[int, dict[str, Any]]
                   ) -> tuple[DocumentHead | None, list[DocLine], FieldErrors]:
    head, errors = validate_form(DocumentHead, form)
    lines, line_errors = document_lines(form, price_list)
    errors = {**errors, **line_errors}
    kind, refers = str(form.get("kind", "")), str(form.get("refers_to", "")).strip()
    if kind == "credit_note" and not refers:
        errors.setdefault("refers_to", _("A credit note corrects an invoice: choose it."))
    if kind != "credit_note" and refers:
        errors.setdefault("refers_to", _("Only a credit note refers to an invoice."))
    if kind in ("order", "proforma") and form.get("payment"):
        errors.setdefault("payment", _("An order or a pro-forma invoice is not paid."))
    return (head if not errors else None), lines, errors


class TillForm(_Form):
    device: Annotated[str, Field(pattern=DEVICE_PATTERN)]
    operator_tax_number: Annotated[str, Field(pattern=r"^\d{8}$")]


def check_till(form: Mapping[str, Any]) -> tuple[TillForm | None, FieldErrors]:
    return validate_form(TillForm, form)
