"""The attendance audit trail: who changed which working-time record, when and why."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, insert, select

from cloud_bridge.attendance.schema import audit


def now_ms() -> int:
    return int(time.time() * 1000)


def record(conn: Connection, tenant: str, actor: str, action: str, subject: str,
           details: dict[str, Any], at_ms: int | None = None) -> None:
    """Append one audit row in the caller's transaction (it commits with the change)."""
    conn.execute(insert(audit).values(tenant=tenant, at=at_ms or now_ms(), actor=actor,
                                      action=action, subject=subject, details=details))


def trail(conn: Connection, tenant: str, limit: int = 500) -> list[dict[str, Any]]:
    rows = conn.execute(select(audit).where(audit.c.tenant == tenant)
                        .order_by(audit.c.id.desc()).limit(limit)).mappings().all()
    return [dict(r) for r in rows]
