""""Waiver to sign" e-mails (issue 18, part 4): when a waiver version is published, every
member with an e-mail address who has not opted out is told once (dedup key per version
and member). Notices go into the notifications outbox in one transaction and are sent
by its background thread, so publishing never waits for a mail server, and an opted-out
member gets nothing. Opt-outs are per member, per kind or for all (notice_optouts.py)."""

from __future__ import annotations

from sqlalchemy import Engine, select

from cloud_bridge.db_schema import members, write_tx
from cloud_bridge.notice_optouts import (  # noqa: F401 - the opt-out lived here first
    ensure_optout_schema,
    member_notice_optouts,
    opt_out,
    opted_out_members,
)
from cloud_bridge.notifications import Notice, Notifier
from cloud_bridge.waivers import WaiverVersion
from contracts.i18n import gettext as _
from contracts.i18n import use_language

KIND = "waiver_to_sign"


def waiver_to_sign(engine: Engine, notifier: Notifier, tenant: str,
                   version: WaiverVersion) -> int:
    """Enqueue one e-mail per member to ask; returns how many were new."""
    ensure_optout_schema(engine)
    opted_out = opted_out_members(tenant, KIND)  # this kind, or every member notice
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
