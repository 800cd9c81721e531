"""Monthly partitions of the events table on PostgreSQL, and the retention that drops them.

On PostgreSQL ``events`` is range-partitioned by the event's own ``ts`` (the device's
clock, ``2026-11-24T19:06:38.195Z``, compared in the "C" collation so that text order is
time order) into one table per month, ``events_y2026m11``, plus ``events_default`` for
anything outside them (empty in practice: a month is created before its first event is
stored). A resend carries the same ``ts``, so it meets its first copy in one partition.

A partitioned table's unique indexes must contain the partition key, so the two keys the
exactly-once rests on live in a narrow, unpartitioned ledger written in the same
transaction, ``event_keys``: primary key (tenant, device, seq) — ``ON CONFLICT DO
NOTHING`` there decides whether an event is new — and unique (tenant, id), which refuses
an event id reused under another seq as before. See docs/scale.md, "Partitioning".

Retention (``cloud-bridge events retention --keep-months N``) raises a horizon, drops
the partitions wholly below it and deletes the ledger keys below it; from then on an
event older than the horizon is refused into the quarantine with a reason instead of
being stored again. SQLite (the single-site default) has none of this.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    select,
)

from cloud_bridge.db_schema import (
    EVENT_ID_INDEX,
    dialect_insert,
    events,
    is_sqlite,
    lock_schema,
    write_tx,
)

log = logging.getLogger(__name__)

ledger_metadata = MetaData()

event_keys = Table(
    "event_keys", ledger_metadata,
    Column("tenant", String(64), primary_key=True),
    Column("device", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("id", String(36), nullable=False),
    Column("ts", String(24, collation="C"), nullable=False),
    Index("ux_event_keys_tenant_id", "tenant", "id", unique=True),
    Index("ix_event_keys_ts", "ts"),  # retention deletes the keys below the horizon
)

# one row (id 1): events with ts below ``horizon`` ("YYYY-MM") were dropped by retention
event_retention = Table(
    "event_retention", ledger_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("horizon", String(7), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

_PARTITION_LOCK = 0x6564676570617274  # pg advisory lock id ("edgepart")
_MONTH = re.compile(r"^\d{4}-\d\d$")
_PARTITION_NAME = re.compile(r"^events_y(\d{4})m(\d\d)$")

MIGRATE_COMMAND = "cloud-bridge events partition --db <the same URL>"

_EVENTS_DDL = """
CREATE TABLE events (
    tenant VARCHAR(64) NOT NULL,
    device VARCHAR(64) NOT NULL,
    seq BIGINT NOT NULL,
    id VARCHAR(36) NOT NULL,
    ts VARCHAR(24) COLLATE "C" NOT NULL,
    type VARCHAR(64) NOT NULL,
    data JSON NOT NULL,
    received_at BIGINT NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (tenant, device, seq, ts)
) PARTITION BY RANGE (ts)
"""


class UnpartitionedEvents(RuntimeError):
    """A PostgreSQL database whose events table predates partitioning and holds rows."""

    def __init__(self) -> None:
        super().__init__(
            "the events table of this PostgreSQL database is not partitioned yet and holds "
            f"events: stop the bridges and run `{MIGRATE_COMMAND}` once (docs/scale.md, "
            "\"Partitioning\"), then start them again")


# -- months --------------------------------------------------------------------------------

def month_of(ts: str) -> str:
    return ts[:7]


def next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def months_back(month: str, count: int) -> str:
    """The month ``count`` months before ``month``."""
    year, mon = int(month[:4]), int(month[5:7])
    index = year * 12 + (mon - 1) - count
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def current_month(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m")


def partition_name(month: str) -> str:
    return f"events_y{month[:4]}m{month[5:7]}"


# -- schema --------------------------------------------------------------------------------

def events_kind(conn: Connection) -> str | None:
    """'p' partitioned, 'r' a plain table, None when there is no events table."""
    kind = conn.exec_driver_sql(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relname = 'events' AND n.nspname = current_schema()").scalar()
    return None if kind is None else str(kind)


def prepare(engine: Engine) -> None:
    """Before the other tables: the partitioned events table with its ledger, current and
    next month. An empty unpartitioned events table is replaced; one holding events is
    refused with the command that migrates it (UnpartitionedEvents)."""
    if is_sqlite(engine):
        return
    with write_tx(engine) as conn:
        lock_schema(conn, _PARTITION_LOCK)
        kind = events_kind(conn)
        if kind == "r":
            if conn.exec_driver_sql("SELECT EXISTS (SELECT 1 FROM events)").scalar():
                raise UnpartitionedEvents()
            conn.exec_driver_sql("DROP TABLE events")
            kind = None
        if kind is None:
            _create_partitioned(conn)
        ledger_metadata.create_all(conn)
        month = current_month()
        for wanted in (month, next_month(month)):
            _ensure_month(conn, wanted)


def _create_partitioned(conn: Connection) -> None:
    conn.exec_driver_sql(_EVENTS_DDL)
    conn.exec_driver_sql("CREATE TABLE events_default PARTITION OF events DEFAULT")
    for index in events.indexes:
        # the sqlite-only expression index, and (tenant, id) which lives in event_keys
        if index.name is None or index.name.endswith("_sqlite") or index is EVENT_ID_INDEX:
            continue
        index.create(conn)


def migrate(engine: Engine) -> int:
    """Turn an unpartitioned events table into the partitioned one, in one transaction;
    returns the number of events moved. Run with the bridges stopped."""
    with write_tx(engine) as conn:
        lock_schema(conn, _PARTITION_LOCK)
        if events_kind(conn) != "r":
            return 0
        conn.exec_driver_sql("ALTER TABLE events RENAME TO events_unpartitioned")
        conn.exec_driver_sql("ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_pkey "
                             "TO events_unpartitioned_pkey")
        for index in events.indexes:
            if index.name is not None:
                conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
        _create_partitioned(conn)
        ledger_metadata.create_all(conn)
        months = [str(m) for m in conn.exec_driver_sql(
            "SELECT DISTINCT substr(ts, 1, 7) FROM events_unpartitioned").scalars()]
        for month in sorted(m for m in months if _MONTH.match(m)):
            _ensure_month(conn, month)
        moved = conn.exec_driver_sql(
            "INSERT INTO events (tenant, device, seq, id, ts, type, data, received_at) "
            "SELECT tenant, device, seq, id, ts, type, data, received_at "
            "FROM events_unpartitioned").rowcount
        conn.exec_driver_sql("INSERT INTO event_keys (tenant, device, seq, id, ts) "
                             "SELECT tenant, device, seq, id, ts FROM events_unpartitioned")
        conn.exec_driver_sql("DROP TABLE events_unpartitioned")
    log.info("events partitioned by month: %d events moved", moved)
    return int(moved)


# -- partitions ----------------------------------------------------------------------------

def existing_months(conn: Connection) -> set[str]:
    names = conn.exec_driver_sql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events'").scalars()
    found = set()
    for name in names:
        match = _PARTITION_NAME.match(str(name))
        if match:
            found.add(f"{match[1]}-{match[2]}")
    return found


def _ensure_month(conn: Connection, month: str) -> bool:
    """Create a month's partition unless it exists (caller holds _PARTITION_LOCK). Rows of
    that month already in the default partition are moved into it (the split), so the
    attach does not fail on them. True when created."""
    if month in existing_months(conn):
        return False
    name, low, high = partition_name(month), month, next_month(month)
    conn.exec_driver_sql(f"CREATE TABLE {name} (LIKE events INCLUDING DEFAULTS "
                         "INCLUDING CONSTRAINTS)")
    moved = conn.exec_driver_sql(
        f"WITH moved AS (DELETE FROM events_default WHERE ts >= '{low}' AND ts < '{high}' "
        f"RETURNING *) INSERT INTO {name} SELECT * FROM moved").rowcount
    conn.exec_driver_sql(f"ALTER TABLE events ATTACH PARTITION {name} "
                         f"FOR VALUES FROM ('{low}') TO ('{high}')")
    log.info("created the events partition %s%s", name,
             f" ({moved} events moved out of events_default)" if moved else "")
    return True


class PartitionKeeper:
    """Creates the month partitions an ingest needs inside its transaction, before its
    inserts (create on miss), remembering the months that exist once that transaction
    committed, so that the usual ingest asks nothing and takes no lock."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def ensure(self, conn: Connection, months: Iterable[str]) -> set[str]:
        """Create the missing months in ``conn``'s transaction; returns the months that
        exist once it commits (hand them to ``committed``)."""
        with self._lock:
            missing = {m for m in months if _MONTH.match(m)} - self._known
        if not missing:
            return set()
        lock_schema(conn, _PARTITION_LOCK)
        for month in sorted(missing):
            _ensure_month(conn, month)
        return existing_months(conn)

    def committed(self, months: set[str]) -> None:
        with self._lock:
            self._known |= months

    def forget(self) -> None:
        """After retention dropped months (a test, or a CLI in the same process)."""
        with self._lock:
            self._known.clear()


def store_events(conn: Connection, rows: list[dict[str, Any]],
                 keeper: PartitionKeeper | None) -> set[str]:
    """Store the rows that are new by (tenant, device, seq) — device events from ingest,
    the bridge's own phone punches — in the caller's transaction; returns the month
    partitions that exist once it commits (for ``keeper.committed``). ``keeper`` None:
    SQLite, one unpartitioned table."""
    if keeper is None:
        conn.execute(dialect_insert(conn, events).on_conflict_do_nothing(
            index_elements=["tenant", "device", "seq"]), rows)
        return set()
    # PostgreSQL: the ledger decides what is new (its unique (tenant, id) refuses a
    # reused id), and only the new events go into their month's partition, made first
    # when missing (never into events_default, which would stop that month's partition
    # from being made)
    created = keeper.ensure(conn, {month_of(r["ts"]) for r in rows})
    new = {tuple(k) for k in conn.execute(
        dialect_insert(conn, event_keys).on_conflict_do_nothing(
            index_elements=["tenant", "device", "seq"])
        .returning(event_keys.c.tenant, event_keys.c.device, event_keys.c.seq),
        [{k: r[k] for k in ("tenant", "device", "seq", "id", "ts")} for r in rows])}
    fresh = [r for r in rows if (r["tenant"], r["device"], r["seq"]) in new]
    if fresh:
        conn.execute(events.insert(), fresh)
    return created


# -- retention -----------------------------------------------------------------------------

def horizon(conn: Connection) -> str | None:
    """Events with ts below this month were dropped by retention (None: nothing dropped)."""
    value = conn.execute(select(event_retention.c.horizon).where(
        event_retention.c.id == 1)).scalar()
    return None if value is None else str(value)


def retain(engine: Engine, keep_months: int, now: dt.datetime | None = None
           ) -> tuple[str, list[str], int]:
    """Keep the current month and the ``keep_months - 1`` before it: raise the horizon
    first (so ingest refuses older events from then on), then drop the partitions below
    it and delete the ledger keys below it. Returns (horizon, dropped partitions, keys
    deleted)."""
    if keep_months < 1:
        raise ValueError("keep at least one month (the current one)")
    if is_sqlite(engine):
        raise ValueError("retention by partition is for PostgreSQL; SQLite keeps every event")
    new = months_back(current_month(now), keep_months - 1)
    with write_tx(engine) as conn:
        lock_schema(conn, _PARTITION_LOCK)
        old = horizon(conn)
        cut = max(new, old) if old else new
        stmt = "INSERT INTO event_retention (id, horizon, updated_at) VALUES (1, %s, %s) " \
               "ON CONFLICT (id) DO UPDATE SET horizon = excluded.horizon, " \
               "updated_at = excluded.updated_at"
        conn.exec_driver_sql(stmt, (cut, int(time.time() * 1000)))
    with write_tx(engine) as conn:
        lock_schema(conn, _PARTITION_LOCK)
        dropped = sorted(m for m in existing_months(conn) if next_month(m) <= cut)
        for month in dropped:
            conn.exec_driver_sql(f"DROP TABLE {partition_name(month)}")
        conn.exec_driver_sql("DELETE FROM events_default WHERE ts < %s", (cut,))
        keys = conn.exec_driver_sql("DELETE FROM event_keys WHERE ts < %s", (cut,)).rowcount
    log.info("events retention: horizon %s, dropped %s, %d keys deleted", cut,
             ", ".join(partition_name(m) for m in dropped) or "nothing", keys)
    return cut, [partition_name(m) for m in dropped], int(keys)
