"""Each employer's (tenant's) working-time rules: the overtime basis, the daily and
weekly hours, and whether working time is unevenly distributed (ZDR-1 art. 155(2)).
Stored append-only (the newest row counts), every change audited; a tenant that never
set them gets ``timesheet.Rules()`` (overtime by the week, ZDR-1 art. 143/144).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, insert, select

from cloud_bridge.attendance import audit_trail
from cloud_bridge.attendance.schema import employer_rules
from cloud_bridge.attendance.timesheet import Rules


def tenant_rules(conn: Connection, tenant: str, base: Rules | None = None) -> Rules:
    """``base`` (default ``Rules()``) with the tenant's stored choices applied."""
    base = base or Rules()
    row = conn.execute(select(employer_rules).where(employer_rules.c.tenant == tenant)
                       .order_by(employer_rules.c.id.desc()).limit(1)).mappings().first()
    if row is None:
        return base
    return replace(base, overtime_basis=row["overtime_basis"],
                   daily_hours=row["daily_hours"], weekly_hours=row["weekly_hours"],
                   uneven_schedule=bool(row["uneven_schedule"]))


def set_tenant_rules(conn: Connection, tenant: str, overtime_basis: str, daily_hours: float,
                     weekly_hours: float, author: str, uneven_schedule: bool = False
                     ) -> dict[str, Any]:
    """Record new rules (validated by ``Rules``: a ValueError says what is wrong)."""
    if not author.strip():
        raise ValueError("changing the rules needs its author")
    Rules(overtime_basis=overtime_basis, daily_hours=daily_hours, weekly_hours=weekly_hours)
    if weekly_hours > 40:
        raise ValueError("full time may not be longer than 40 hours a week (ZDR-1 art. 143)")
    now = audit_trail.now_ms()
    values = {"tenant": tenant, "overtime_basis": overtime_basis,
              "daily_hours": daily_hours, "weekly_hours": weekly_hours,
              "uneven_schedule": uneven_schedule, "set_by": author.strip(), "set_at": now}
    conn.execute(insert(employer_rules).values(**values))
    audit_trail.record(conn, tenant, author.strip(), "rules.set", f"tenant {tenant}", values,
                       now)
    return values


def rules_json(rules: Rules) -> dict[str, Any]:
    return {"overtime_basis": rules.overtime_basis, "daily_hours": rules.daily_hours,
            "weekly_hours": rules.weekly_hours, "uneven_schedule": rules.uneven_schedule}
