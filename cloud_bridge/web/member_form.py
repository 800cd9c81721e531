"""The member form (new and edit): its limits, shown in the form and enforced here with
the same numbers, the date typed the Slovenian way, and the ids of members made on the
web (digits only, so they can be typed on a kiosk's digit pad)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection, func, select

from cloud_bridge.db_schema import members
from cloud_bridge.web.context import LOCAL_TZ
from contracts.i18n import LANGUAGES, parse_day
from contracts.i18n import gettext as _

FIRST_NAME_MAX = 40
LAST_NAME_MAX = 80
EMAIL_MAX = 254
PHONE_MAX = 32
FIRST_MEMBER_NUMBER = 1001
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}$")
_PHONE = re.compile(r"^\+?[0-9 ()/-]{3,32}$")


class MemberForm(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    first_name: Annotated[str, Field(min_length=1, max_length=FIRST_NAME_MAX)]
    last_name: Annotated[str, Field(max_length=LAST_NAME_MAX)] = ""
    email: Annotated[str, Field(max_length=EMAIL_MAX)] = ""
    phone: Annotated[str, Field(max_length=PHONE_MAX)] = ""
    waiver_signed_on: date | None = None
    blocked: bool = False
    language: str = "sl"  # of the member's notices

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if value and not _EMAIL.match(value):
            raise ValueError(_("Enter an e-mail address like ana@example.com."))
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        if value and not _PHONE.match(value):
            raise ValueError(_("Enter a phone number with digits, for example 041 123 456."))
        return value

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(_("Choose the language of the member's notices."))
        return value

    @field_validator("waiver_signed_on", mode="before")
    @classmethod
    def _day(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_day(value) if value.strip() else None
        return value

    @field_validator("blocked", mode="before")
    @classmethod
    def _checkbox(cls, value: Any) -> bool:
        return value in (True, "on", "1", "true")

    def fields(self) -> dict[str, Any]:
        """As MemberIn / MemberPatch input (empty text is no value)."""
        return {"first_name": self.first_name, "last_name": self.last_name,
                "email": self.email or None, "phone": self.phone or None,
                "waiver_signed_on": self.waiver_signed_on, "blocked": self.blocked,
                "language": self.language}


def typed_day(value: date | str | int | None) -> str:
    """A date as a form field holds it, 3. 12. 2026 in every language: the way
    contracts.i18n.parse_day reads it back (an English reader's 03/12/2026 would not
    be read back, and would be ambiguous)."""
    if value is None or value == "":
        return ""
    if isinstance(value, int):  # an entitlement's epoch seconds: the site's local day
        day = datetime.fromtimestamp(value, LOCAL_TZ).date()
    elif isinstance(value, str):
        day = date.fromisoformat(value[:10])
    else:
        day = value
    return f"{day.day}. {day.month}. {day.year}"


def form_values(member: dict[str, Any]) -> dict[str, Any]:
    """A stored member as the form's values."""
    waiver = member.get("waiver_signed_on")
    return {**member, "waiver_signed_on": typed_day(waiver),
            "blocked": "1" if member.get("blocked") else ""}


def next_member_number(conn: Connection, tenant: str) -> str:
    """The tenant's next member number (1001, 1002 …): the highest id made only of
    digits plus one. Ids made otherwise (m-…, the API's own) are kept and skipped."""
    rows = conn.execute(select(members.c.id).where(
        members.c.tenant == tenant, members.c.id >= "0", members.c.id < ":")
        .order_by(func.length(members.c.id).desc(), members.c.id.desc()).limit(50)).scalars()
    for member_id in rows:
        if member_id.isdigit():
            return str(max(int(member_id) + 1, FIRST_MEMBER_NUMBER))
    return str(FIRST_MEMBER_NUMBER)
