"""The notification outbox: one row per message, written in the caller's transaction,
delivered later by the notifier. A unique (tenant, dedup_key) makes a repeated enqueue a
no-op. A row is claimed by moving its due time forward (a lease), so two bridges never
send the same row at once; a bridge killed after sending but before marking sends that
one message again when the lease ends (at least once, never silently lost)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    RowMapping,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from cloud_bridge.db_schema import create_tables, is_sqlite, lock_schema, read_tx, write_tx
from cloud_bridge.notifications.notice import Notice

notification_metadata = MetaData()
_SCHEMA_LOCK = 0x656467656E6F7466  # pg advisory lock id ("edgenotf")

outbox = Table(
    "notification_outbox", notification_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("dedup_key", String(200), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("due_ms", BigInteger, nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("sent_ms", BigInteger),
    Column("refused", Text),  # why it can never be sent; the row is kept aside
    Column("last_error", Text),
    Column("unsubscribe_url", Text, nullable=True),  # e-mail: RFC 8058 one-click opt-out
    UniqueConstraint("tenant", "dedup_key", name="uq_notification_dedup"),
)


def ensure_notification_schema(engine: Engine) -> None:
    create_tables(engine, notification_metadata, _SCHEMA_LOCK)
    with write_tx(engine) as conn:  # a table made before the column (additive, nullable)
        lock_schema(conn, _SCHEMA_LOCK)
        if "unsubscribe_url" not in {c["name"] for c in inspect(conn).get_columns(
                outbox.name)}:
            conn.exec_driver_sql("ALTER TABLE notification_outbox ADD COLUMN "
                                 "unsubscribe_url TEXT")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    tenant: str
    kind: str
    channel: str
    recipient: str
    subject: str
    body: str
    created_ms: int
    due_ms: int
    attempts: int
    sent_ms: int | None
    refused: str | None
    last_error: str | None
    unsubscribe_url: str | None = None

    @property
    def state(self) -> str:
        """``sent``, ``refused`` or ``pending``."""
        if self.sent_ms is not None:
            return "sent"
        return "refused" if self.refused is not None else "pending"


def _row(mapping: RowMapping) -> OutboxRow:
    return OutboxRow(**{k: mapping[k] for k in OutboxRow.__slots__})


def insert_notice(conn: Connection, notice: Notice, now_ms: int) -> bool:
    """Write ``notice``; False when its dedup key was enqueued before (nothing written)."""
    values = {"tenant": notice.tenant, "dedup_key": notice.dedup_key, "kind": notice.kind,
              "channel": notice.channel, "recipient": notice.recipient,
              "subject": notice.subject, "body": notice.body, "created_ms": now_ms,
              "due_ms": now_ms, "attempts": 0, "unsubscribe_url": notice.unsubscribe_url}
    dialect = sqlite if is_sqlite(conn) else postgresql
    stmt = dialect.insert(outbox).values(**values).on_conflict_do_nothing(
        index_elements=["tenant", "dedup_key"]).returning(outbox.c.id)
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT that returns the new id
    return conn.execute(stmt).first() is not None


def due_rows(engine: Engine, now_ms: int, limit: int) -> list[OutboxRow]:
    with read_tx(engine) as conn:
        rows = conn.execute(
            select(outbox).where(and_(outbox.c.sent_ms.is_(None), outbox.c.refused.is_(None),
                                      outbox.c.due_ms <= now_ms))
            .order_by(outbox.c.due_ms, outbox.c.id).limit(limit)).mappings().all()
    return [_row(r) for r in rows]


def claim(conn: Connection, row: OutboxRow, lease_until_ms: int) -> bool:
    """Take ``row`` for sending if no one else took it since it was read."""
    result = conn.execute(update(outbox).where(and_(
        outbox.c.id == row.id, outbox.c.due_ms == row.due_ms, outbox.c.sent_ms.is_(None),
        outbox.c.refused.is_(None))).values(due_ms=lease_until_ms))
    return result.rowcount == 1


def mark_sent(conn: Connection, row_id: int, now_ms: int) -> None:
    conn.execute(update(outbox).where(outbox.c.id == row_id).values(
        sent_ms=now_ms, attempts=outbox.c.attempts + 1, last_error=None))


def mark_refused(conn: Connection, row_id: int, reason: str) -> None:
    conn.execute(update(outbox).where(outbox.c.id == row_id).values(
        refused=reason, attempts=outbox.c.attempts + 1))


def mark_deferred(conn: Connection, row_id: int, error: str, next_due_ms: int) -> None:
    conn.execute(update(outbox).where(outbox.c.id == row_id).values(
        last_error=error, due_ms=next_due_ms, attempts=outbox.c.attempts + 1))


def rows_for(engine: Engine, tenant: str, *, kind: str | None = None,
             limit: int = 100) -> list[OutboxRow]:
    """The newest rows of one tenant (for pages that show what was sent)."""
    query = select(outbox).where(outbox.c.tenant == tenant)
    if kind is not None:
        query = query.where(outbox.c.kind == kind)
    with read_tx(engine) as conn:
        rows = conn.execute(query.order_by(outbox.c.id.desc()).limit(limit)).mappings().all()
    return [_row(r) for r in rows]
