""""Waiver to sign" e-mails (issue 18, part 4): when a waiver version is published, every
member with an e-mail address who has not opted out is told once (dedup key per version
and member). Notices go into the notifications outbox in one transaction and are sent
by its background thread, so publishing never waits for a mail server, and an opted-out
member gets nothing. Opt-outs are per member and per kind (``member_notice_optouts``)."""

from __future__ import annotations

from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, insert, select

from cloud_bridge.db_schema import create_tables, members, write_tx
from cloud_bridge.notifications import Notice, Notifier
from cloud_bridge.waivers import WaiverVersion
from contracts.i18n import gettext as _
from contracts.i18n import use_language

optout_metadata = MetaData()
_SCHEMA_LOCK = 0x6564676F70746F75  # pg advisory lock id ("edgoptou")
KIND = "waiver_to_sign"

member_notice_optouts = Table(
    "member_notice_optouts", optout_metadata,
    Column("tenant", String(64), primary_key=True),
    Column("member_id", String(64), primary_key=True),
    Column("kind", String(40), primary_key=True),  # a Notice kind, e.g. waiver_to_sign
)


def ensure_optout_schema(engine: Engine) -> None:
    create_tables(engine, optout_metadata, _SCHEMA_LOCK)


def opt_out(conn: Connection, tenant: str, member_id: str, kind: str) -> None:
    if conn.execute(select(member_notice_optouts.c.kind).where(
            member_notice_optouts.c.tenant == tenant,
            member_notice_optouts.c.member_id == member_id,
            member_notice_optouts.c.kind == kind)).first() is None:
        conn.execute(insert(member_notice_optouts).values(
            tenant=tenant, member_id=member_id, kind=kind))


def waiver_to_sign(engine: Engine, notifier: Notifier, tenant: str,
                   version: WaiverVersion) -> int:
    """Enqueue one e-mail per member to ask; returns how many were new."""
    ensure_optout_schema(engine)
    opted_out = select(member_notice_optouts.c.member_id).where(
        member_notice_optouts.c.tenant == tenant, member_notice_optouts.c.kind == KIND)
    queued = 0
    with write_tx(engine) as conn, use_language("sl"):  # members read Slovenian
        rows = conn.execute(select(members.c.id, members.c.first_name, members.c.email).where(
            members.c.tenant == tenant, members.c.email.is_not(None), members.c.email != "",
            members.c.blocked.is_(False), members.c.id.not_in(opted_out)))
        for member_id, first_name, email in rows.all():
            body = _("Hello %(name)s,\n\nthe waiver \"%(title)s\" has a new version. Please "
                     "read and sign it at the reception or on your phone's entry-code page "
                     "before your next visit; the gate asks for it.") % {
                "name": first_name, "title": version.title}
            queued += notifier.enqueue(conn, Notice(
                tenant=tenant, kind=KIND, channel="email", recipient=email,
                subject=_("Please sign the new waiver"), body=body,
                dedup_key=f"{KIND}:{version.version}:{member_id}"))
    return queued
