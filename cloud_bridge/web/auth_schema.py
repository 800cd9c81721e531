"""Tables of the web layer: staff users, sessions, login attempts, audit log.

SQLAlchemy Core on a MetaData of its own, so it sits beside the ingest schema in the
same database (SQLite or PostgreSQL) without either knowing the other's tables.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

web_metadata = MetaData()

users = Table(
    "web_users", web_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("username", String(120), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(32), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_ms", BigInteger, nullable=False),
    # a username is unique across tenants: the login form does not ask for a tenant
    UniqueConstraint("username", name="uq_web_users_username"),
)

sessions = Table(
    "web_sessions", web_metadata,
    # sha256 of the cookie value: a leaked database does not hand out live sessions
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Index("ix_web_sessions_expires", "expires_ms"),
)

login_attempts = Table(
    "web_login_attempts", web_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(120), nullable=False),
    Column("client", String(64), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("ok", Boolean, nullable=False),
    Index("ix_web_login_user_at", "username", "at_ms"),
    Index("ix_web_login_client_at", "client", "at_ms"),
)

audit_log = Table(
    "web_audit_log", web_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("username", String(120), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(200), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Index("ix_web_audit_tenant_at", "tenant", "at_ms"),
)
