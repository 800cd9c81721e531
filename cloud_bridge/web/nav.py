"""The navigation bar: one list, so another module links itself with one line
(``NAV.append(NavItem(...))`` at import, or an entry here)."""

from __future__ import annotations

from dataclasses import dataclass

from cloud_bridge.web.roles import allowed


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str
    path: str  # below /t/{tenant}
    permission: str


NAV: list[NavItem] = [
    NavItem("Fleet", "/fleet", "fleet.view"),
    NavItem("Members", "/members", "members.view"),
    NavItem("Plans", "/plans", "members.view"),
    NavItem("Live", "/live", "live.view"),
    NavItem("Statistics", "/stats", "live.view"),
    NavItem("Receipts", "/receipts", "receipts.view"),
    NavItem("Users", "/users", "users.manage"),
    NavItem("Audit", "/audit", "audit.view"),
    NavItem("Data", "/data", "tenant.export"),
]


def nav_for(role: str) -> list[NavItem]:
    return [item for item in NAV if allowed(role, item.permission)]


def home_path(tenant: str, role: str) -> str:
    items = nav_for(role)
    return f"/t/{tenant}{items[0].path}" if items else f"/t/{tenant}/none"
