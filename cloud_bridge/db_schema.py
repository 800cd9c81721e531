"""The bridge's database: one SQLAlchemy Core schema for SQLite (WAL) and PostgreSQL.

Every table is keyed by tenant first: a query that forgets the tenant finds nothing of
another tenant's because there is no key without it. Times are epoch milliseconds
(BigInteger) so both dialects store and compare them the same way.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    inspect,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

log = logging.getLogger(__name__)

metadata = MetaData()

_ID = 64

tenants = Table(
    "bridge_tenants", metadata,
    Column("tenant", String(_ID), primary_key=True),
    # the newest change-log version; bumped under this row's lock (one writer per tenant)
    Column("version", BigInteger, nullable=False, default=0),
    # versions <= log_floor were pruned: a device below it gets a snapshot
    Column("log_floor", BigInteger, nullable=False, default=0),
)

events = Table(
    "events", metadata,
    Column("tenant", String(_ID), primary_key=True),
    Column("device", String(_ID), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("id", String(36), nullable=False),
    Column("ts", String(24), nullable=False),  # 2026-11-24T19:06:38.195Z, sorts as text
    Column("type", String(_ID), nullable=False),
    Column("data", JSON, nullable=False),
    Column("received_at", BigInteger, nullable=False),
)

# entries consumed (+1) or given back (-1) per event, keyed like the event so that a
# duplicate delivery cannot count twice; summed per device into used_by_device
entitlement_uses = Table(
    "entitlement_uses", metadata,
    Column("tenant", String(_ID), primary_key=True),
    Column("device", String(_ID), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("entitlement", String(_ID), nullable=False),
    Column("delta", Integer, nullable=False),
    Index("ix_entitlement_uses_ent", "tenant", "entitlement"),
)

device_cursor = Table(
    "device_cursor", metadata,
    Column("tenant", String(_ID), primary_key=True),
    Column("device", String(_ID), primary_key=True),
    Column("acked_seq", BigInteger, nullable=False),  # every seq 1..acked_seq is committed
    Column("updated_at", BigInteger, nullable=False),
)

devices = Table(
    "devices", metadata,
    Column("tenant", String(_ID), primary_key=True),
    Column("device", String(_ID), primary_key=True),
    Column("online", Boolean, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("state_ts", String(32), nullable=True),  # ts of the stored state, for ordering
    Column("state", JSON, nullable=True),
)

members = Table(
    "members", metadata,
    Column("tenant", String(_ID), primary_key=True),
    Column("id", String(_ID), primary_key=True),
    Column("first_name", String(40), nullable=False),
    Column("last_name", String(80), nullable=False, default=""),
    Column("email", String(254), nullable=True),
    Column("phone", String(32), nullable=True),
    Column("waiver_signed_on", String(10), nullable=True),
    # the waiver version signed on that day (cloud_bridge/waivers.py); None: signed
    # before versions were kept, or the day was set by hand
    Column("waiver_version", Integer, nullable=True),
    Column("blocked", Boolean, nullable=False, default=False),
    Column("pin_hash", String(200), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # the language of the member's notices (member_notices.py): 'sl' or 'en'
    Column("language", String(2), nullable=False, default="sl", server_default="sl"),
)

credentials = Table(
    "credentials", metadata,
    Column("tenant", String(_ID), primary_key=True),
    Column("id", String(_ID), primary_key=True),
    Column("member_id", String(_ID), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("hash", String(64), nullable=True),  # keyed hash; never the UID or code
    Column("blocked", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("tenant", "hash", name="uq_credentials_hash"),
    Index("ix_credentials_member", "tenant", "member_id"),
)

entitlements = Table(
    "entitlements", metadata,
    Column("tenant", String(_ID), primary_key=True),
    Column("id", String(_ID), primary_key=True),
    Column("member_id", String(_ID), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("valid_from", BigInteger, nullable=True),
    Column("valid_to", BigInteger, nullable=True),
    Column("valid_on", String(10), nullable=True),
    Column("entries_total", Integer, nullable=True),
    Column("zones", JSON, nullable=True),
    Column("windows", JSON, nullable=True),
    Column("frozen_from", BigInteger, nullable=True),
    Column("frozen_to", BigInteger, nullable=True),
    Column("credential_id", String(_ID), nullable=True),
    Column("used_by_device", JSON, nullable=False, default=dict),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_entitlements_member", "tenant", "member_id"),
)

change_log = Table(
    "change_log", metadata,
    Column("tenant", String(_ID), primary_key=True),
    Column("version", BigInteger, primary_key=True, autoincrement=False),
    # the JSON list of change records, as text: it is embedded in signed payloads as is
    Column("changes", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

commands = Table(
    "commands", metadata,
    Column("request_id", String(64), primary_key=True),
    Column("tenant", String(_ID), nullable=False),
    Column("device", String(_ID), nullable=False),
    Column("name", String(32), nullable=False),
    Column("args", JSON, nullable=False),
    Column("sent_at", BigInteger, nullable=False),
    # what the command carried (contracts/command_expiry.py); NULL for commands sent before it
    Column("expires_at", BigInteger, nullable=True),
    Column("answered_at", BigInteger, nullable=True),
    Column("ok", Boolean, nullable=True),
    Column("result", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_commands_device", "tenant", "device", "sent_at"),
)


# what the bridge refused and will never store in the tables above: kept for an operator
# (docs/security.md, "Strict parsing and the quarantine"). One row per distinct refused
# payload of a device (digest), counted when it comes again. ``seq`` is set and
# ``settles`` true when one event of a batch was refused: that seq then counts as done for
# the device's contiguous ack, so one bad event cannot hold up the device's later ones.
QUARANTINE_RAW_BYTES = 256 * 1024  # a whole events message fits: nothing is cut short
quarantine = Table(
    "quarantine", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("tenant", String(_ID), nullable=False),
    Column("device", String(_ID), nullable=False),
    Column("kind", String(32), nullable=False),  # events | state | cmd-result | ...
    Column("seq", BigInteger, nullable=True),
    Column("settles", Boolean, nullable=False, default=False),
    Column("event_id", String(36), nullable=True),
    Column("reason", Text, nullable=False),
    Column("raw", LargeBinary, nullable=False),  # at most QUARANTINE_RAW_BYTES
    Column("raw_size", Integer, nullable=False),
    Column("digest", String(64), nullable=False),  # sha256 of the whole raw payload
    Column("first_seen", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("times", Integer, nullable=False, default=1),
    UniqueConstraint("tenant", "device", "digest", name="uq_quarantine_digest"),
    Index("ix_quarantine_seq", "tenant", "device", "seq"),
    Index("ix_quarantine_seen", "tenant", "last_seen"),
)

# an event's UUID is unique per tenant: the same id under another seq is refused (on
# PostgreSQL, where events is partitioned, by ux_event_keys_tenant_id: partitions.py)
EVENT_ID_INDEX = Index("ux_events_tenant_id", events.c.tenant, events.c.id, unique=True)


# -- indexes for the web modules (additive; cloud_bridge/web/db_indexes.py also creates
# them on databases made before they existed). Expression indexes are written per dialect
# as text, so that a query using the very same text can use them.

MEMBER_OF_EVENT = {"sqlite": "json_extract(data, '$.member')",
                   "postgresql": "(data ->> 'member')"}

# the live list reads new events by arrival time, per tenant
Index("ix_events_received", events.c.tenant, events.c.received_at)
# statistics and receipts: one type's events in a time range
Index("ix_events_type_ts", events.c.tenant, events.c.type, events.c.ts)
# a member's recent entries and denials
Index("ix_events_member_sqlite", events.c.tenant, text(MEMBER_OF_EVENT["sqlite"])
      ).ddl_if(dialect="sqlite")
Index("ix_events_member_pg", events.c.tenant, text(MEMBER_OF_EVENT["postgresql"])
      ).ddl_if(dialect="postgresql")
# the sales-and-use statistics' entries (granted access decisions that are not exits) by
# local hour and member: partial indexes whose predicate the statistics' queries repeat
# word for word (web/entry_stats.py, granted_entry_filter), so they read only entries
ENTRY_EVENT = {
    "sqlite": "type = 'access.decision' AND json_extract(data, '$.granted') = 1 "
              "AND coalesce(json_extract(data, '$.direction'), '') <> 'out'",
    "postgresql": "type = 'access.decision' AND (data ->> 'granted') = 'true' "
                  "AND coalesce(data ->> 'direction', '') <> 'out'"}
Index("ix_events_entries_sqlite", events.c.tenant, events.c.ts,
      text(MEMBER_OF_EVENT["sqlite"]), sqlite_where=text(ENTRY_EVENT["sqlite"])
      ).ddl_if(dialect="sqlite")
Index("ix_events_entries_pg", events.c.tenant, events.c.ts,
      text(MEMBER_OF_EVENT["postgresql"]), postgresql_where=text(ENTRY_EVENT["postgresql"])
      ).ddl_if(dialect="postgresql")
# member search: case-folded prefix ranges, ordered by (name, id) straight from the index
# so a page is read without sorting the matches; "C" collation on PostgreSQL so that a
# range [q, q + U+FFFF) is exactly the prefix whatever the database's locale
for _col in ("last_name", "first_name", "email"):
    Index(f"ix_members_{_col}_prefix_sqlite", members.c.tenant, func.lower(members.c[_col]),
          members.c.id).ddl_if(dialect="sqlite")
    Index(f"ix_members_{_col}_prefix_pg", members.c.tenant,
          func.lower(members.c[_col]).collate("C"), members.c.id).ddl_if(dialect="postgresql")


def index_applies(index: Index, engine: Engine) -> bool:
    """Whether a bridge index exists on this dialect: not the other dialect's twin, and on
    PostgreSQL not (tenant, id) on the partitioned events (event_keys holds it there)."""
    if is_sqlite(engine):
        return not str(index.name).endswith("_pg")
    return not str(index.name).endswith("_sqlite") and index is not EVENT_ID_INDEX


def normalise_url(url: str) -> str:
    """postgresql:// means psycopg 3 here (psycopg2 is not a dependency)."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def make_engine(url: str, *, pool_size: int = 5, create: bool = True) -> Engine:
    """An engine with the bridge's connection settings; creates the schema if asked."""
    url = normalise_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False},
                               json_serializer=strict_dumps)
        _sqlite_setup(engine)
    elif backend == "postgresql":
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size,
                               pool_pre_ping=True, json_serializer=strict_dumps)
    else:
        raise ValueError(f"unsupported database {backend!r}: use sqlite:///path or "
                         "postgresql://user@host/db")
    if create:
        create_schema(engine)
    return engine


def strict_dumps(value: Any) -> str:
    """JSON columns are written without NaN/Infinity: a value that is not JSON fails its
    own statement (a permanent fault of that message) instead of poisoning the table."""
    return json.dumps(value, allow_nan=False)


_SCHEMA_LOCK = 0x6564676562726467  # pg advisory lock id ("edgebrdg")


def lock_schema(conn: Connection, lock_id: int) -> None:
    """Serialise schema changes of bridges starting at the same moment: SQLite's write
    lock already does (write_tx), PostgreSQL takes an advisory lock per module."""
    if not is_sqlite(conn):
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({lock_id})")


def create_tables(engine: Engine, tables: MetaData, lock_id: int) -> None:
    """Create a module's missing tables (each module has its own MetaData and lock id)."""
    with write_tx(engine) as conn:
        lock_schema(conn, lock_id)
        tables.create_all(conn)


# columns added to existing tables after they were first released: create_all does not
# add columns, so a database made before them gets them here (additive: nullable, or
# with a default that existing rows take)
_ADDED_COLUMNS = (("commands", "expires_at", "BIGINT"),
                  ("members", "waiver_version", "INTEGER"),
                  ("members", "language", "VARCHAR(2) NOT NULL DEFAULT 'sl'"))


def create_schema(engine: Engine) -> None:
    """Create the bridge's missing tables; safe when several bridges start at once."""
    if is_sqlite(engine):
        _sweep_before_json_index(engine)
    else:  # events partitioned by month, with its key ledger (cloud_bridge/partitions.py)
        from cloud_bridge.partitions import prepare

        prepare(engine)
    create_tables(engine, metadata, _SCHEMA_LOCK)
    with write_tx(engine) as conn:
        lock_schema(conn, _SCHEMA_LOCK)
        for table, column, sql_type in _ADDED_COLUMNS:
            present = {c["name"] for c in inspect(conn).get_columns(table)}
            if column not in present:
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
    if is_sqlite(engine):  # on PostgreSQL the ledger event_keys holds (tenant, id) unique
        _ensure_event_id_index(engine)
    # the ticket ledger: ingest and membership snapshots read it (cloud_bridge/tickets)
    from cloud_bridge.tickets.schema import ensure_ticket_schema

    ensure_ticket_schema(engine)


def _sweep_before_json_index(engine: Engine) -> None:
    """An events table made before its JSON index (ix_events_member_sqlite) may hold data
    SQLite's JSON functions refuse: quarantine those rows, then build the index."""
    with write_tx(engine) as conn:
        names = {r[0] for r in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE name IN ('events', 'quarantine', "
            "'ix_events_member_sqlite')")}
        if "events" not in names or "ix_events_member_sqlite" in names:
            return
        if "quarantine" not in names:
            quarantine.create(conn)
        from cloud_bridge.quarantine import sweep_stored_poison

        moved = sweep_stored_poison(conn)
        conn.exec_driver_sql("CREATE INDEX ix_events_member_sqlite ON events "
                             f"(tenant, {MEMBER_OF_EVENT['sqlite']})")
    if moved:
        log.warning("moved %d stored events whose data is not valid JSON to the "
                    "quarantine (see the fleet page)", moved)


def _ensure_event_id_index(engine: Engine) -> None:
    """Databases made before event ids were unique get the index now; where they already
    hold one id under two seqs the index cannot be built: say so and carry on (the ingest
    checks ids before it stores them anyway)."""
    from sqlalchemy.exc import IntegrityError

    try:
        with write_tx(engine) as conn:
            lock_schema(conn, _SCHEMA_LOCK)
            conn.exec_driver_sql("CREATE UNIQUE INDEX IF NOT EXISTS ux_events_tenant_id "
                                 "ON events (tenant, id)")
    except IntegrityError:
        log.error("events hold an event id twice under one tenant: the unique index "
                  "ux_events_tenant_id is not built; find them with GROUP BY tenant, id")


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
        # we issue BEGIN ourselves (below), so that writers can take the lock up front
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: an ack tells the device it may delete its copy, so the commit must be on disk
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # IMMEDIATE for writers: a deferred transaction that later wants to write can fail
        # at once with SQLITE_BUSY when another process committed meanwhile
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def is_sqlite(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


@contextlib.contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A write transaction: BEGIN IMMEDIATE on SQLite, a plain one on PostgreSQL."""
    with engine.connect() as conn:
        if is_sqlite(engine):
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


@contextlib.contextmanager
def read_tx(engine: Engine, *, stream: bool = False) -> Iterator[Connection]:
    """A read transaction that sees one consistent snapshot (REPEATABLE READ on PostgreSQL;
    SQLite's WAL gives every transaction a snapshot of its own)."""
    with engine.connect() as conn:
        opts: dict[str, Any] = {}
        if not is_sqlite(engine):
            opts["isolation_level"] = "REPEATABLE READ"
        if stream:
            opts["stream_results"] = True
        if opts:
            conn = conn.execution_options(**opts)
        with conn.begin():
            yield conn


def dialect_insert(conn: Connection, table: Table) -> Any:
    """The dialect's own INSERT, which has ``on_conflict_do_nothing/do_update``."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def insert_ignore(conn: Connection, table: Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for either dialect."""
    return dialect_insert(conn, table).on_conflict_do_nothing()


def upsert(conn: Connection, table: Table, keys: list[str], update: dict[str, Any],
           where: Any = None) -> Any:
    """INSERT … ON CONFLICT (keys) DO UPDATE SET update [WHERE where]; values and the
    condition may be callables taking the ``excluded`` row."""
    stmt = dialect_insert(conn, table)
    values = {k: (v(stmt.excluded) if callable(v) else v) for k, v in update.items()}
    cond = where(stmt.excluded) if callable(where) else where
    return stmt.on_conflict_do_update(index_elements=keys, set_=values, where=cond)


def greatest(conn: Connection, a: Any, b: Any) -> Any:
    return func.greatest(a, b) if conn.dialect.name == "postgresql" else func.max(a, b)
