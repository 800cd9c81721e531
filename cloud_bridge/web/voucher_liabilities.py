"""What the gym still owes on gift vouchers: entries sold and not yet used.

Today this is computed from gift-voucher entitlements (``entitlement_voucher_liabilities``):
a voucher counts while it has entries left (``entries_total`` minus the uses summed in
``used_by_device``) and has not expired (no ``valid_to``, or ``valid_to`` after the
moment asked about). Its value is the entries left × its plan's price per entry (the
plan's price / the plan's entries), when the voucher was sold from a plan with a price
(``plan_sales.entitlements_sold_from``); vouchers without one are counted with their
entries but no value. It is a figure for now: entitlements do not keep when each entry
was used, so the liability at an earlier day cannot be told.

Printed tickets and vouchers (cloud_bridge/tickets, docs/vouchers.md) keep a ledger with
balances in money: ``all_voucher_liabilities`` adds a line per ticket kind from it to the
entitlement lines, and is what the page shows. The page takes its figures through
``LiabilitySource``, so another source can be plugged in without touching the page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from cloud_bridge.db_schema import entitlements
from cloud_bridge.tickets.ledger import open_by_kind
from cloud_bridge.web.plan_sales import entitlements_sold_from
from cloud_bridge.web.plans import tenant_plans
from contracts.i18n import N_, gettext
from contracts.ticket_token import TicketKind

TICKET_KIND_LABELS = {TicketKind.DAY_TICKET: N_("Printed day tickets"),
                      TicketKind.ENTRY_VOUCHER: N_("Printed entry vouchers"),
                      TicketKind.VALUE_VOUCHER: N_("Printed value vouchers")}


@dataclass(frozen=True, slots=True)
class VoucherLine:
    plan_id: str | None  # None: vouchers not sold from a plan (or from a pruned sale)
    plan_name: str
    vouchers: int
    entries_left: int
    value_cents: int | None  # None: no price to value them with


@dataclass(frozen=True, slots=True)
class VoucherLiabilities:
    lines: tuple[VoucherLine, ...]

    @property
    def vouchers(self) -> int:
        return sum(x.vouchers for x in self.lines)

    @property
    def entries_left(self) -> int:
        return sum(x.entries_left for x in self.lines)

    @property
    def value_cents(self) -> int:
        """The value of the vouchers that have a price (see ``unpriced_entries``)."""
        return sum(x.value_cents or 0 for x in self.lines)

    @property
    def unpriced_entries(self) -> int:
        return sum(x.entries_left for x in self.lines if x.value_cents is None)


LiabilitySource = Callable[[Connection, str, datetime], VoucherLiabilities]


def open_vouchers(conn: Connection, tenant: str, now: datetime) -> dict[str, int]:
    """Gift-voucher entitlement id -> entries left, for those with entries left and not
    expired at ``now``."""
    now_s = int(now.timestamp())
    out = {}
    for r in conn.execute(select(entitlements.c.id, entitlements.c.entries_total,
                                 entitlements.c.valid_to, entitlements.c.used_by_device)
                          .where(entitlements.c.tenant == tenant,
                                 entitlements.c.kind == "gift_voucher")):
        used = sum(int(n) for n in (r.used_by_device or {}).values())
        left = (r.entries_total or 0) - used
        if left > 0 and (r.valid_to is None or r.valid_to > now_s):
            out[r.id] = left
    return out


def entitlement_voucher_liabilities(conn: Connection, tenant: str, now: datetime
                                    ) -> VoucherLiabilities:
    vouchers = open_vouchers(conn, tenant, now)
    plans = {p["id"]: p for p in tenant_plans(conn, tenant) if p["kind"] == "gift_voucher"}
    sold_from = entitlements_sold_from(conn, tenant, set(plans)) if vouchers else {}
    grouped: dict[str | None, list[int]] = {}
    for ent_id, left in vouchers.items():
        grouped.setdefault(sold_from.get(ent_id), []).append(left)
    lines = []
    for plan_id, lefts in grouped.items():
        plan = plans.get(plan_id or "")
        value = None
        if plan and plan["price_cents"] is not None and plan["entries_total"]:
            # per voucher, rounded half-up to the cent
            value = sum((left * plan["price_cents"] * 2 + plan["entries_total"])
                        // (2 * plan["entries_total"]) for left in lefts)
        lines.append(VoucherLine(plan_id if plan else None, plan["name"] if plan else "",
                                 len(lefts), sum(lefts), value))
    lines.sort(key=lambda x: (x.plan_id is None, x.plan_name))
    return VoucherLiabilities(tuple(lines))


def ticket_ledger_lines(conn: Connection, tenant: str, now: datetime
                        ) -> tuple[VoucherLine, ...]:
    """A line per kind of printed ticket or voucher still owed (the ticket ledger)."""
    return tuple(VoucherLine(None, gettext(TICKET_KIND_LABELS[x.kind]), x.tickets,
                             x.entries_left, x.owed_cents)
                 for x in open_by_kind(conn, tenant, int(now.timestamp())))


def all_voucher_liabilities(conn: Connection, tenant: str, now: datetime
                            ) -> VoucherLiabilities:
    """Gift-voucher entitlements and the ticket ledger together (what the page shows)."""
    return VoucherLiabilities(entitlement_voucher_liabilities(conn, tenant, now).lines
                              + ticket_ledger_lines(conn, tenant, now))
