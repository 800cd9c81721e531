"""Who changed what: one row per change made through the web modules or the API."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, insert, select

from cloud_bridge.web.audit_redaction import redact
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.auth_schema import audit_log


def record(conn: Connection, staff: Staff, action: str, target: str,
           detail: dict[str, Any] | None = None) -> None:
    """Write in the caller's transaction, so the change and its trace commit together."""
    conn.execute(insert(audit_log).values(
        tenant=staff.tenant, username=staff.username, action=action, target=target[:200],
        detail=redact(detail or {}), at_ms=int(time.time() * 1000)))


def recent(conn: Connection, tenant: str, limit: int = 200) -> list[dict[str, Any]]:
    rows = conn.execute(select(audit_log).where(audit_log.c.tenant == tenant)
                        .order_by(audit_log.c.at_ms.desc(), audit_log.c.id.desc())
                        .limit(limit)).mappings().all()
    return [dict(r) for r in rows]
