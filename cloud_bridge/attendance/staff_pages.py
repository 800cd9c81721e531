"""What the attendance staff pages share: their templates (the attendance folder first,
the shared bridge templates behind it), ``render`` with the navigation of the signed-in
user, the month of a page (``?month=2026-11`` or "11. 2026"), the labels of absence
kinds and punch types in the reader's language, and the employees of a tenant."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from babel.dates import format_date
from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Connection, Engine, or_, select

from cloud_bridge.attendance.reports import templates
from cloud_bridge.attendance.schema import absences, corrections, employees
from cloud_bridge.attendance.timesheet import LJUBLJANA
from cloud_bridge.db_schema import members, read_tx
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.guards import need
from cloud_bridge.web.nav import nav_for
from cloud_bridge.web.roles import allowed
from contracts.i18n import babel_locale
from contracts.i18n import gettext as _

Viewer = Annotated[Staff, Depends(need("attendance.view"))]
Editor = Annotated[Staff, Depends(need("attendance.edit"))]
MonthText = Annotated[str | None, Query(max_length=40)]



def _can_edit(staff: Staff) -> bool:
    return allowed(staff.role, "attendance.edit")


def render(request: Request, name: str, staff: Staff, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    base = {"staff": staff, "nav": nav_for(staff.role), "tenant": staff.tenant,
            "csrf": staff.csrf, "can_edit": _can_edit(staff)}
    return templates.TemplateResponse(request, name, {**base, **context},
                                      status_code=status_code)


# -- months ------------------------------------------------------------------------

_ISO_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_LOCAL_MONTH = re.compile(r"^(\d{1,2})\.\s*(\d{4})\.?$")


@dataclass(frozen=True, slots=True)
class Month:
    year: int
    month: int

    @property
    def iso(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    def label(self) -> str:
        """"november 2026" in the reader's language."""
        return format_date(self.first, "LLLL y", locale=babel_locale())

    def shift(self, months: int) -> Month:
        n = self.year * 12 + self.month - 1 + months
        return Month(n // 12, n % 12 + 1)


def this_month() -> Month:
    now = datetime.now(UTC).astimezone(LJUBLJANA)
    return Month(now.year, now.month)


def parse_month_text(text: str | None) -> Month:
    """"2026-11" (links) or "11. 2026" (typed); ValueError with a message for a person."""
    cleaned = (text or "").strip()
    if not cleaned:
        return this_month()
    if m := _ISO_MONTH.match(cleaned):
        year, month = int(m[1]), int(m[2])
    elif m := _LOCAL_MONTH.match(cleaned):
        month, year = int(m[1]), int(m[2])
    else:
        raise ValueError(_("“%(value)s” is not a month: choose one from the list or type "
                           "it as month. year, for example 11. 2026.") % {"value": cleaned[:20]})
    if not 1 <= month <= 12 or not 2000 <= year <= 2100:
        raise ValueError(_("There is no month %(value)s: the month is 1 to 12 and the year "
                           "2000 to 2100.") % {"value": cleaned[:20]})
    return Month(year, month)


def month_choices(selected: Month, back: int = 36) -> list[tuple[str, str]]:
    """The months a picker offers: the last three years up to next month, newest first,
    and the selected one even when it is outside them."""
    newest = this_month().shift(1)
    months = [newest.shift(-i) for i in range(back + 1)]
    if selected not in months:
        months.append(selected)
        months.sort(key=lambda m: m.iso, reverse=True)
    return [(m.iso, m.label()) for m in months]


# -- employees ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Employee:
    number: str
    first_name: str
    last_name: str
    has_pin: bool

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


def tenant_employees(conn: Connection, tenant: str) -> list[Employee]:
    """The members who use the time clock: those entered as employees, those with a PIN
    and those with absences or corrections recorded."""
    recorded = select(absences.c.employee).where(absences.c.tenant == tenant).union(
        select(corrections.c.employee).where(corrections.c.tenant == tenant),
        select(employees.c.employee).where(employees.c.tenant == tenant))
    rows = conn.execute(select(members.c.id, members.c.first_name, members.c.last_name,
                               members.c.pin_hash).where(
        members.c.tenant == tenant,
        or_(members.c.pin_hash.is_not(None), members.c.id.in_(recorded)))
        .order_by(members.c.id))
    return [Employee(r.id, r.first_name, r.last_name, r.pin_hash is not None) for r in rows]


def employee_choices(employees: list[Employee]) -> list[tuple[str, str]]:
    return [(e.number, f"{e.number} · {e.name}") for e in employees]


def unknown_employee(engine: Engine, tenant: str, number: str) -> dict[str, str]:
    """A form error when a posted employee number is not one of the tenant's."""
    with read_tx(engine) as conn:
        if any(e.number == number for e in tenant_employees(conn, tenant)):
            return {}
    return {"__all__": _("Choose an employee from the list first.")}
