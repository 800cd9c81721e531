"""The staff form and the JSON body that issue a ticket or voucher, checked into an
``IssueRequest`` (cloud_bridge/tickets/ledger.py); errors are per field, in the reader's
language, and the form keeps what was typed."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cloud_bridge.tickets.documents import LOCAL_TZ
from cloud_bridge.tickets.ledger import MAX_DAYS, MAX_ENTRIES, MAX_VALUE_CENTS, IssueRequest
from cloud_bridge.web.form_errors import FieldErrors, validate_form
from cloud_bridge.web.plan_form import parse_cents
from contracts.i18n import N_, format_money, parse_day
from contracts.i18n import gettext as _
from contracts.ticket_token import TicketKind

FORM_KINDS: dict[str, tuple[TicketKind, str]] = {
    "day": (TicketKind.DAY_TICKET, N_("Day ticket")),
    "entries": (TicketKind.ENTRY_VOUCHER, N_("Entry voucher")),
    "value": (TicketKind.VALUE_VOUCHER, N_("Gift voucher (value)")),
}
LABEL_MAX = 80


def _cents(value: Any) -> int:
    cents = parse_cents(str(value or ""))
    if cents > MAX_VALUE_CENTS:
        raise ValueError(_("Enter at most %(amount)s.") % {"amount": format_money(MAX_VALUE_CENTS)})
    return cents


class TicketForm(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    kind: Literal["day", "entries", "value"]
    label: Annotated[str, Field(max_length=LABEL_MAX)] = ""
    entries: Annotated[int | None, Field(ge=1, le=MAX_ENTRIES)] = None
    value: int | None = None
    price: int
    valid_from: date
    valid_days: Annotated[int, Field(ge=1, le=MAX_DAYS)]
    site: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_.-]*$")] = ""
    buyer_email: Annotated[str, Field(max_length=320)] = ""

    @field_validator("entries", "value", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, value: Any) -> int | None:
        blank = value is None or (isinstance(value, str) and not value.strip())
        return None if blank else _cents(value)

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, value: Any) -> int:
        return _cents(value)

    @field_validator("valid_from", mode="before")
    @classmethod
    def _day(cls, value: Any) -> date:
        if isinstance(value, date):
            return value
        try:
            return parse_day(str(value or ""))
        except ValueError:
            raise ValueError(_("Enter a date, for example 3. 12. 2026.")) from None

    @field_validator("buyer_email")
    @classmethod
    def _email(cls, value: str) -> str:
        if value and ("@" not in value or " " in value or value.startswith("@")):
            raise ValueError(_("Enter an e-mail address, for example ana@example.si."))
        return value


def _start(day: date) -> int:
    return int(datetime.combine(day, time(0), LOCAL_TZ).timestamp())


def check_ticket_form(form: dict[str, str]) -> tuple[IssueRequest | None, FieldErrors]:
    """The issue request, or the messages to show beside the fields."""
    parsed, errors = validate_form(TicketForm, form)
    if parsed is None:
        return None, errors
    if parsed.kind == "value" and not parsed.value:
        return None, {"value": _("A value voucher needs an amount.")}
    if parsed.kind != "value" and not parsed.entries:
        return None, {"entries": _("A ticket or entry voucher needs a number of entries.")}
    kind = FORM_KINDS[parsed.kind][0]
    end = parsed.valid_from + timedelta(days=parsed.valid_days)
    return IssueRequest(
        kind=kind, valid_from=_start(parsed.valid_from), valid_to=_start(end),
        entries=0 if kind is TicketKind.VALUE_VOUCHER else parsed.entries or 0,
        value_cents=parsed.value or 0 if kind is TicketKind.VALUE_VOUCHER else 0,
        price_cents=parsed.price, site=parsed.site or None,
        buyer_email=parsed.buyer_email or None, label=parsed.label), {}
