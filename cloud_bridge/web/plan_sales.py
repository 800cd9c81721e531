"""Plan sales as the bridge knows them today: an entitlement created from a plan on a
member's page (``member_entitlements.add_entitlement``) leaves one audit row,
``entitlement.create`` with ``{"plan": <plan id>, "version": <change-log version>}``,
written in the same transaction as the entitlement. Revenue is those rows × the plan's
price (``web_plan_prices``; a plan's price cannot be changed after it is created).

What this is not: money actually taken. The till's receipts (``pos.receipt`` events)
name products by text, not plans, so they cannot be split per ticket type; an
entitlement made by hand or through the JSON API has no plan and no price; a sale whose
entitlement was later removed still counts. docs/statistics.md says the same to the
reader. A sales ledger of sold tickets can replace ``plan_sales`` behind the same rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, select

from cloud_bridge.db_schema import change_log
from cloud_bridge.web.auth_schema import audit_log
from cloud_bridge.web.entry_stats import local_midnight
from cloud_bridge.web.plans import tenant_plans
from cloud_bridge.web.usage_stats import month_start

SALE_ACTION = "entitlement.create"
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class RevenueRow:
    month: date  # first day of the local month of the sales
    kind: str  # the plan's kind: membership, punch_card, day_ticket, gift_voucher
    plan_id: str
    plan_name: str
    sold: int
    price_cents: int | None  # None: the plan has no price
    revenue_cents: int | None


def _ms(day: date) -> int:
    return int(local_midnight(day).timestamp() * 1000)


def plan_sales(conn: Connection, tenant: str, first: date, last: date
               ) -> list[tuple[datetime, str]]:
    """(local moment, plan id) of every plan sale on local days first..last."""
    plan = audit_log.c.detail["plan"].as_string()
    stmt = select(audit_log.c.at_ms, plan).where(
        audit_log.c.tenant == tenant, audit_log.c.action == SALE_ACTION,
        audit_log.c.at_ms >= _ms(first), audit_log.c.at_ms < _ms(last + timedelta(days=1)),
        plan.is_not(None), plan != "")
    local = local_midnight(first).tzinfo
    return [(datetime.fromtimestamp(at / 1000, UTC).astimezone(local), str(p))
            for at, p in conn.execute(stmt)]


def revenue_by_month(conn: Connection, tenant: str, first: date, last: date
                     ) -> list[RevenueRow]:
    """Plan sales per local month and plan, with their revenue, month then kind then name."""
    counts: dict[tuple[date, str], int] = {}
    for moment, plan_id in plan_sales(conn, tenant, first, last):
        key = (month_start(moment.date()), plan_id)
        counts[key] = counts.get(key, 0) + 1
    plans = {p["id"]: p for p in tenant_plans(conn, tenant)}
    rows = []
    for (month, plan_id), sold in counts.items():
        plan = plans.get(plan_id)
        price = plan["price_cents"] if plan else None
        rows.append(RevenueRow(month, plan["kind"] if plan else "", plan_id,
                               plan["name"] if plan else plan_id, sold, price,
                               None if price is None else price * sold))
    return sorted(rows, key=lambda r: (r.month, r.kind, r.plan_name, r.plan_id))


def entitlements_sold_from(conn: Connection, tenant: str, plan_ids: set[str]
                           ) -> dict[str, str]:
    """Entitlement id -> plan id for the entitlements sold from these plans: the sale's
    audit row names the change-log version, whose records hold the new entitlement's
    id. Sales whose change-log entry was pruned are not found (their entitlements count
    as having no plan)."""
    if not plan_ids:
        return {}
    plan = audit_log.c.detail["plan"].as_string()
    version = audit_log.c.detail["version"].as_integer()
    by_version = {int(v): str(p) for p, v in conn.execute(select(plan, version).where(
        audit_log.c.tenant == tenant, audit_log.c.action == SALE_ACTION,
        plan.in_(sorted(plan_ids)))) if v is not None}
    versions = sorted(by_version)
    out: dict[str, str] = {}
    for i in range(0, len(versions), _CHUNK):
        for v, changes in conn.execute(select(change_log.c.version, change_log.c.changes).where(
                change_log.c.tenant == tenant,
                change_log.c.version.in_(versions[i:i + _CHUNK]))):
            for rec in json.loads(changes):
                if rec.get("entity") == "entitlement" and rec.get("op") == "upsert":
                    out[str(rec["id"])] = by_version[int(v)]
    return out
