"""The PostgreSQL test database is shared by a worker's whole session, and a Notifier
delivers every tenant's due notices: an earlier test's undelivered notice would reach
this test's SMTP server. ``set_aside_other_tenants`` marks those refused first, so a
test counts only its own mails."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, update

from cloud_bridge.db_schema import write_tx
from cloud_bridge.notifications.outbox import ensure_notification_schema, outbox


def set_aside_other_tenants(engine: Engine, tenants: Iterable[str]) -> None:
    ensure_notification_schema(engine)
    with write_tx(engine) as conn:
        conn.execute(update(outbox).where(
            outbox.c.tenant.not_in(list(tenants)), outbox.c.sent_ms.is_(None),
            outbox.c.refused.is_(None)).values(refused="set aside by another test"))
