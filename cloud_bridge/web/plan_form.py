"""The new-plan form: its limits (shown in the form and enforced here with the same
numbers), its price and VAT rate, and the check that a plan can always be applied (its
fields are validated as an entitlement's would be)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cloud_bridge.api_models import EntitlementFields
from cloud_bridge.web.entitlement_forms import (
    ENTRIES_MAX,
    FieldError,
    parse_windows,
    parse_zones,
    windows_hint,
)
from cloud_bridge.web.form_errors import FieldErrors, validate_form
from contracts.i18n import N_, format_money, format_number
from contracts.i18n import gettext as _

NAME_MAX = 80
DURATION_MAX_DAYS = 3660  # ten years
ZONES_MAX = 200
WINDOWS_MAX = 200
PRICE_MAX_CENTS = 10_000_00  # 10.000,00 €
# Slovenia's VAT rates (general, reduced, the 5 % rate for some goods, exempt), in
# hundredths of a percent so 9,5 % is exact
VAT_RATES_BP: tuple[int, ...] = (2200, 950, 500, 0)
KIND_LABELS: dict[str, str] = {
    "membership": N_("Membership (time-bound)"),
    "punch_card": N_("Punch card"),
    "day_ticket": N_("Day ticket"),
    "gift_voucher": N_("Gift voucher"),
}
_MONEY = re.compile(r"^\d{1,7}(?:[.,]\d{1,2})?$")


def parse_cents(text: str) -> int:
    """12,50 or 12.50 or 12 (euros) as cents; ValueError with a message for a person."""
    cleaned = text.strip().replace("€", "").replace(" ", "").replace("\xa0", "")
    if not _MONEY.match(cleaned):
        raise ValueError(_("Enter an amount in euros, for example 39,90."))
    try:
        return int(Decimal(cleaned.replace(",", ".")) * 100)
    except InvalidOperation:
        raise ValueError(_("Enter an amount in euros, for example 39,90.")) from None


def vat_label(bp: int) -> str:
    return f"{format_number(Decimal(bp) / 100)} %"


class PlanForm(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
    kind: Literal["membership", "punch_card", "day_ticket", "gift_voucher"]
    duration_days: Annotated[int | None, Field(ge=1, le=DURATION_MAX_DAYS)] = None
    entries_total: Annotated[int | None, Field(ge=1, le=ENTRIES_MAX)] = None
    zones: Annotated[str, Field(max_length=ZONES_MAX)] = ""
    windows: Annotated[str, Field(max_length=WINDOWS_MAX)] = ""
    price: int
    vat_rate_bp: int

    @field_validator("duration_days", "entries_total", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, value: Any) -> int:
        cents = parse_cents(str(value or ""))
        if cents > PRICE_MAX_CENTS:
            raise ValueError(_("Enter at most %(amount)s.")
                             % {"amount": format_money(PRICE_MAX_CENTS)})
        return cents

    @field_validator("vat_rate_bp", mode="before")
    @classmethod
    def _vat(cls, value: Any) -> int:
        text = str(value or "").strip()
        if not text.isdigit() or int(text) not in VAT_RATES_BP:
            raise ValueError(_("Choose one of the offered options."))
        return int(text)


def check_plan(form: dict[str, str]) -> tuple[dict[str, Any] | None, FieldErrors]:
    """The plan's stored values, or the messages to show beside the fields."""
    plan, errors = validate_form(PlanForm, form)
    if plan is None:
        return None, errors
    if plan.kind == "membership" and plan.duration_days is None:
        return None, {"duration_days": _("A membership needs its length in days.")}
    if plan.kind in ("punch_card", "gift_voucher") and plan.entries_total is None:
        return None, {"entries_total": _("A punch card or voucher needs a number of "
                                          "entries.")}
    try:
        windows = parse_windows(plan.windows) or None
    except FieldError:
        return None, {"windows": windows_hint()}
    values = {"name": plan.name, "kind": plan.kind, "duration_days": plan.duration_days,
              "entries_total": plan.entries_total, "zones": parse_zones(plan.zones),
              "windows": windows}
    try:  # validated as an entitlement would be, so applying the plan cannot fail
        EntitlementFields.model_validate({
            "member_id": "x", "kind": plan.kind, "valid_on": "2000-01-01",
            "entries_total": plan.entries_total, "zones": values["zones"],
            "windows": windows or []})
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else "windows"
        where = field if field in ("zones", "entries_total") else "windows"
        return None, {where: windows_hint() if where == "windows"
                      else _("This value is not accepted.")}
    return {**values, "price_cents": plan.price, "vat_rate_bp": plan.vat_rate_bp}, {}
