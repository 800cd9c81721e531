"""The ticket ledger's tables (SQLite and PostgreSQL), in a MetaData of their own.

``tickets``: one row per printed ticket or voucher, whoever issued it (the bridge, or a
till whose ``ticket.issued`` event arrived). The signed code is not stored: Ed25519
signatures are deterministic, so the bridge signs the same row again to show or print it,
and a till-issued code is only ever on its paper. ``ticket_uses``: one row per
``ticket.used`` event, keyed by the event id, so a redelivered event counts once.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

from cloud_bridge.db_schema import create_tables

tickets_metadata = MetaData()
_SCHEMA_LOCK = 0x6564676574696B74  # pg advisory lock id ("edgetikt")

tickets = Table(
    "tickets", tickets_metadata,
    Column("tenant", String(64), primary_key=True),
    Column("id", String(36), primary_key=True),  # the UUID inside the signed code
    Column("kind", Integer, nullable=False),  # contracts.ticket_token.TicketKind
    Column("site", String(64)),  # None: any site of the tenant
    Column("valid_from", BigInteger, nullable=False),  # epoch s
    Column("valid_to", BigInteger, nullable=False),  # exclusive
    Column("entries", Integer, nullable=False),
    Column("value_cents", BigInteger, nullable=False),
    Column("price_cents", BigInteger, nullable=False),  # what the buyer paid
    Column("receipt", String(64)),  # the fiscal receipt that sold it, if any
    Column("issuer", String(64), nullable=False),  # "tenant" or the till key's SHA-256
    Column("source", String(64), nullable=False),  # "bridge" or the device that sold it
    Column("buyer_email", String(320)),
    Column("label", String(80), nullable=False, default=""),
    # sold on a POS receipt through the bridge: the "print" command sent to the site's
    # POS device (its result names the receipt; cloud_bridge/tickets/pos_sale.py)
    Column("sale_device", String(64)),
    Column("sale_request", String(64)),
    Column("refunded_ms", BigInteger),  # set: refunded or cancelled, revoked on devices
    Column("refund_note", String(200)),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_tickets_tenant_created", "tenant", "created_ms"),
)

ticket_uses = Table(
    "ticket_uses", tickets_metadata,
    Column("tenant", String(64), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("ticket_id", String(36), nullable=False),
    Column("device", String(64), nullable=False),
    Column("place", String(8), nullable=False),  # gate / till (the event's "where")
    Column("entries", Integer, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("receipt", String(64)),
    Column("at", String(40), nullable=False),  # the event's ts
    Index("ix_ticket_uses_ticket", "tenant", "ticket_id"),
)


def ensure_ticket_schema(engine: Engine) -> None:
    create_tables(engine, tickets_metadata, _SCHEMA_LOCK)
