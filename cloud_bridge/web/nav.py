"""The navigation bar: one list, so another module links itself with one line
(``NAV.append(NavItem(...))`` at import, or an entry here)."""

from __future__ import annotations

from dataclasses import dataclass

from cloud_bridge.web.roles import allowed
from contracts.i18n import N_


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str  # an English msgid, translated in the template
    path: str  # below /t/{tenant}, unless absolute
    permission: str
    # modules whose tenant comes from the session, not the URL (the E-SV driving school)
    absolute: bool = False

    def href(self, tenant: str) -> str:
        return self.path if self.absolute else f"/t/{tenant}{self.path}"


NAV: list[NavItem] = [
    NavItem(N_("Fleet"), "/fleet", "fleet.view"),
    NavItem(N_("Members"), "/members", "members.view"),
    NavItem(N_("Plans"), "/plans", "members.view"),
    NavItem(N_("Waivers"), "/waivers", "members.view"),
    NavItem(N_("Live"), "/live", "live.view"),
    NavItem(N_("Statistics"), "/stats", "live.view"),
    NavItem(N_("Sales and use"), "/sales-stats", "sales.view"),
    NavItem(N_("Receipts"), "/receipts", "receipts.view"),
    NavItem(N_("Tickets"), "/tickets", "receipts.view"),
    NavItem(N_("Timesheets"), "/timesheets", "attendance.view"),
    NavItem(N_("Users"), "/users", "users.manage"),
    NavItem(N_("Audit"), "/audit", "audit.view"),
    NavItem(N_("Data"), "/data", "tenant.export"),
    NavItem(N_("Driving school"), "/driving-school/", "lessons.view", absolute=True),
]


def nav_for(role: str) -> list[NavItem]:
    return [item for item in NAV if allowed(role, item.permission)]


def home_path(tenant: str, role: str) -> str:
    if role == "instructor":
        return "/driving-school/app/"  # instructors work in the tablet app
    items = nav_for(role)
    return items[0].href(tenant) if items else f"/t/{tenant}/none"
