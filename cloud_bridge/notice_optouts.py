"""Which members do not want to be told (issue 18, part 4): one table for every member
notice (membership expiring, punch card running low, voucher bought, waiver to sign).

A row ``(tenant, member, kind)`` silences one kind; the kind ``all`` silences every
member notice, which is what the member's own page (notice_optout_page.py) and the staff
toggle on the member's page set. Every sender asks ``opted_out`` (or excludes
``opted_out_members``) before it queues anything."""

from __future__ import annotations

import base64
import hashlib
import hmac

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    Select,
    String,
    Table,
    delete,
    insert,
    or_,
    select,
)

from cloud_bridge.db_schema import create_tables

optout_metadata = MetaData()
_SCHEMA_LOCK = 0x6564676F70746F75  # pg advisory lock id ("edgoptou")
ALL = "all"  # every member notice

member_notice_optouts = Table(
    "member_notice_optouts", optout_metadata,
    Column("tenant", String(64), primary_key=True),
    Column("member_id", String(64), primary_key=True),
    Column("kind", String(40), primary_key=True),  # a Notice kind, or ``all``
)


def ensure_optout_schema(engine: Engine) -> None:
    create_tables(engine, optout_metadata, _SCHEMA_LOCK)


def opt_out(conn: Connection, tenant: str, member_id: str, kind: str = ALL) -> None:
    if conn.execute(select(member_notice_optouts.c.kind).where(
            member_notice_optouts.c.tenant == tenant,
            member_notice_optouts.c.member_id == member_id,
            member_notice_optouts.c.kind == kind)).first() is None:
        conn.execute(insert(member_notice_optouts).values(
            tenant=tenant, member_id=member_id, kind=kind))


def opt_in(conn: Connection, tenant: str, member_id: str) -> None:
    """The member wants notices again: every opt-out of theirs is removed."""
    conn.execute(delete(member_notice_optouts).where(
        member_notice_optouts.c.tenant == tenant,
        member_notice_optouts.c.member_id == member_id))


def opted_out_members(tenant: str, kind: str) -> Select[tuple[str]]:
    """The ids of the tenant's members who do not want ``kind`` (for ``not_in``)."""
    return select(member_notice_optouts.c.member_id).where(
        member_notice_optouts.c.tenant == tenant,
        or_(member_notice_optouts.c.kind == kind, member_notice_optouts.c.kind == ALL))


def opted_out(conn: Connection, tenant: str, member_id: str, kind: str = ALL) -> bool:
    """True if the member silenced ``kind`` or every notice (``kind=ALL``: only the
    latter)."""
    query = opted_out_members(tenant, kind).where(
        member_notice_optouts.c.member_id == member_id)
    return conn.execute(query.limit(1)).first() is not None


# -- the member's own link --------------------------------------------------------------

OPTOUT_TOKEN_CHARS = 22  # 132 bits of base64url


def optout_token(link_key: bytes, tenant: str, member_id: str) -> str:
    """The secret of a member's notice page: an HMAC under the server link key with its
    own label, so it opens nothing else (not the QR page)."""
    msg = b"\x00".join([b"member-notice-optout/v1", tenant.encode(), member_id.encode()])
    digest = hmac.new(link_key, msg, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:OPTOUT_TOKEN_CHARS]


def optout_link(base_url: str, link_key: bytes, tenant: str, member_id: str) -> str:
    """The page's address; the secret sits in the fragment, which no server log sees."""
    token = optout_token(link_key, tenant, member_id)
    return f"{base_url.rstrip('/')}/member-notices/{tenant}/{member_id}#k={token}"


def oneclick_token(link_key: bytes, tenant: str, member_id: str) -> str:
    """The secret of the RFC 8058 one-click address. Mail clients POST to it without a
    fragment, so it sits in the query string (and may reach an access log): it has its
    own label and can only turn notices off, never read or restore them."""
    msg = b"\x00".join([b"member-notice-oneclick/v1", tenant.encode(), member_id.encode()])
    digest = hmac.new(link_key, msg, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:OPTOUT_TOKEN_CHARS]


def oneclick_link(base_url: str, link_key: bytes, tenant: str, member_id: str) -> str:
    token = oneclick_token(link_key, tenant, member_id)
    return f"{base_url.rstrip('/')}/member-notices/{tenant}/{member_id}/one-click?k={token}"
