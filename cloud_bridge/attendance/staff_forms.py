"""The forms of the attendance staff pages as pydantic models: the server judges every
value, and the templates show the same limits (each limit is one constant here)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from contracts.i18n import gettext as _
from contracts.i18n import parse_day
from contracts.punch_types import PunchType

NUMBER_MAX = 16  # the kiosk's keypad takes letters and digits (agent/attendance/pin_guard)
FIRST_NAME_MAX = 40  # members.first_name (cloud_bridge/api_models.py)
LAST_NAME_MAX = 80
PIN_MIN, PIN_MAX = 4, 8  # cloud_bridge/api_models.Pin
REASON_MIN, REASON_MAX = 3, 2000  # also the JSON API's (cloud_bridge/attendance/api.py)
HOURS_MIN, HOURS_MAX = 0.5, 24.0
NUMBER_PATTERN = rf"^[A-Za-z0-9]{{1,{NUMBER_MAX}}}$"
PIN_PATTERN = rf"^[0-9]{{{PIN_MIN},{PIN_MAX}}}$"
TIME_PATTERN = r"^([01]?[0-9]|2[0-3])[:.][0-5][0-9]$"

Text = Annotated[str, StringConstraints(strip_whitespace=True)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=REASON_MIN,
                                          max_length=REASON_MAX)]


class _Form(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def blanks_to_none(form: dict[str, str], *names: str) -> dict[str, Any]:
    """Empty optional fields are missing values, not empty strings."""
    return {k: (None if k in names and not v.strip() else v) for k, v in form.items()}


class EmployeeNew(_Form):
    number: Annotated[str, StringConstraints(strip_whitespace=True, pattern=NUMBER_PATTERN)]
    first_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                 max_length=FIRST_NAME_MAX)]
    last_name: Annotated[str, StringConstraints(strip_whitespace=True,
                                                max_length=LAST_NAME_MAX)] = ""
    pin: Annotated[str, StringConstraints(pattern=PIN_PATTERN)] | None = None


class EmployeeEdit(_Form):
    first_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                 max_length=FIRST_NAME_MAX)]
    last_name: Annotated[str, StringConstraints(strip_whitespace=True,
                                                max_length=LAST_NAME_MAX)] = ""
    pin: Annotated[str, StringConstraints(pattern=PIN_PATTERN)] | None = None
    remove_pin: bool = False


def _day(value: Any) -> Any:
    return parse_day(value) if isinstance(value, str) else value


class CorrectionForm(_Form):
    employee: Text
    action: Literal["add", "amend", "void"]
    punch: Annotated[str, Field(max_length=200)] | None = None  # "clock-1#5", "correction#3"
    day: date | None = None
    time: str | None = None
    punch_type: PunchType | None = None
    reason: Reason

    _parse_day = field_validator("day", mode="before")(_day)

    @field_validator("time")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        if value is not None and not re.match(TIME_PATTERN, value.strip()):
            raise ValueError(_("Enter the time as hours:minutes, for example 7:30."))
        return value.strip() if value is not None else None

    def missing(self) -> dict[str, str]:
        """What this action needs and the form left empty, per field."""
        need = _("Fill this in.")
        errors: dict[str, str] = {}
        if self.action == "add":
            for name in ("day", "time", "punch_type"):
                if getattr(self, name) is None:
                    errors[name] = need
        else:
            if not self.punch:
                errors["punch"] = _("Choose the punch to correct.")
            if self.action == "amend" and self.punch_type is None and (
                    self.day is None or self.time is None):
                errors["time"] = _("Give the new day and time, the new type, or both.")
            if (self.day is None) != (self.time is None) and self.action == "amend":
                errors["day" if self.day is None else "time"] = need
        return errors


class AbsenceForm(_Form):
    employee: Text
    kind: Literal["annual_leave", "sick_leave", "other"]
    first_day: date
    last_day: date
    hours_per_day: Annotated[float, Field(ge=HOURS_MIN, le=HOURS_MAX)] | None = None
    note: Reason

    _parse_days = field_validator("first_day", "last_day", mode="before")(_day)

    @field_validator("hours_per_day", mode="before")
    @classmethod
    def _decimal_comma(cls, value: Any) -> Any:
        return value.replace(",", ".").strip() if isinstance(value, str) else value

    def order_errors(self) -> dict[str, str]:
        if self.last_day < self.first_day:
            return {"last_day": _("The last day is before the first day.")}
        if (self.last_day - self.first_day).days > 366:
            return {"last_day": _("An absence spans at most a year; enter a longer one "
                                  "year by year.")}
        return {}


class WithdrawForm(_Form):
    reason: Reason
