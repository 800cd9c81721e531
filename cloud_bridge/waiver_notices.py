""""Waiver to sign" notices (issue 18, part 4): when a waiver version is published, every
member who can be reached (an e-mail address with a mailer configured, a phone with an
SMS provider configured) and has not opted out is told once per version and channel.
Notices go into the notifications outbox in one transaction and are sent by its
background thread, so publishing never waits for a mail server. The opt-out is the one
of every member notice (notice_optouts.py); the channels and the footer with the
member's opt-out page are those of member_notices.py."""

from __future__ import annotations

from functools import partial

from sqlalchemy import Engine, or_, select

from cloud_bridge.db_schema import members, write_tx
from cloud_bridge.member_notices import OptoutLinks, Recipient, Texts, send_to
from cloud_bridge.notice_optouts import (  # noqa: F401 - the opt-out lived here first
    ensure_optout_schema,
    member_notice_optouts,
    opt_out,
    opted_out_members,
)
from cloud_bridge.notifications import Notifier
from cloud_bridge.waivers import WaiverVersion
from contracts.i18n import gettext as _

KIND = "waiver_to_sign"


def waiver_texts(first_name: str, title: str) -> Texts:
    return Texts(
        subject=_("Please sign the new waiver"),
        body=_("Hello %(name)s,\n\nthe waiver \"%(title)s\" has a new version. Please "
               "read and sign it at the reception or on your phone's entry-code page "
               "before your next visit; the gate asks for it.") % {
            "name": first_name, "title": title},
        sms=_("The waiver \"%(title)s\" has a new version: please sign it before your next "
              "visit.") % {"title": title})


def waiver_to_sign(engine: Engine, notifier: Notifier, tenant: str,
                   version: WaiverVersion, links: OptoutLinks | None = None) -> int:
    """Enqueue one notice per member and channel to ask; returns how many were new."""
    ensure_optout_schema(engine)
    opted_out = opted_out_members(tenant, KIND)  # this kind, or every member notice
    queued = 0
    with write_tx(engine) as conn:
        rows = conn.execute(select(members.c.id, members.c.first_name, members.c.email,
                                   members.c.phone, members.c.language).where(
            members.c.tenant == tenant, members.c.blocked.is_(False),
            or_(members.c.email != "", members.c.phone != ""),
            members.c.id.not_in(opted_out)))
        for member_id, first_name, email, phone, language in rows.all():
            who = Recipient(email=email or None, phone=phone or None,
                            first_name=first_name or "", member_id=member_id,
                            language=language or "sl")
            queued += send_to(conn, notifier, tenant, KIND,
                              f"{KIND}:{version.version}:{member_id}", who,
                              partial(waiver_texts, who.first_name, version.title),
                              links=links)
    return queued
