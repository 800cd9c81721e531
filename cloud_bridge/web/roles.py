"""Staff roles and what each may do. Every page and API route names one permission."""

from __future__ import annotations

import enum

from contracts.i18n import N_, gettext


class Role(enum.StrEnum):
    ADMIN = "administrator"
    RECEPTION = "reception"
    ACCOUNTANT = "accountant"
    INSTRUCTOR = "instructor"  # E-SV driving school


ROLE_NAMES: dict[str, str] = {
    Role.ADMIN: N_("administrator"),
    Role.RECEPTION: N_("reception"),
    Role.ACCOUNTANT: N_("accountant"),
    Role.INSTRUCTOR: N_("instructor"),
}


def role_name(role: str) -> str:
    """The role as staff read it, in the current language."""
    return gettext(ROLE_NAMES.get(role, role))


PERMISSIONS: dict[str, frozenset[Role]] = {
    "fleet.view": frozenset({Role.ADMIN, Role.RECEPTION}),
    "fleet.command": frozenset({Role.ADMIN, Role.RECEPTION}),
    # an enrolment code hands the tenant's card-hashing key to a new device
    "fleet.enrol": frozenset({Role.ADMIN}),
    "members.view": frozenset({Role.ADMIN, Role.RECEPTION}),
    "members.edit": frozenset({Role.ADMIN, Role.RECEPTION}),
    "members.erase": frozenset({Role.ADMIN}),
    "plans.edit": frozenset({Role.ADMIN}),
    "live.view": frozenset({Role.ADMIN, Role.RECEPTION}),
    # sales and use statistics (revenue, voucher liabilities): the manager and the books
    "sales.view": frozenset({Role.ADMIN, Role.ACCOUNTANT}),
    "receipts.view": frozenset({Role.ADMIN, Role.ACCOUNTANT, Role.RECEPTION}),
    "receipts.reprint": frozenset({Role.ADMIN, Role.RECEPTION}),
    "attendance.view": frozenset({Role.ADMIN, Role.ACCOUNTANT}),
    "attendance.edit": frozenset({Role.ADMIN}),
    "lessons.record": frozenset({Role.ADMIN, Role.INSTRUCTOR}),
    "lessons.view": frozenset({Role.ADMIN, Role.INSTRUCTOR, Role.RECEPTION}),
    "tenant.export": frozenset({Role.ADMIN}),
    # the till catalogue (issue 22): the manager edits, the counter staff look prices up
    "catalogue.view": frozenset({Role.ADMIN, Role.RECEPTION, Role.ACCOUNTANT}),
    "catalogue.edit": frozenset({Role.ADMIN}),
    "users.manage": frozenset({Role.ADMIN}),
    "audit.view": frozenset({Role.ADMIN}),
}


def allowed(role: str, permission: str) -> bool:
    try:
        return Role(role) in PERMISSIONS[permission]
    except ValueError:
        return False
