"""Notices to members (issue 18, part 4): membership expiring, punch card running low,
voucher bought. Each one goes by e-mail to the member's address and by SMS to their
phone, for each channel the bridge has a provider for (``--mail-url``, ``--sms-url``),
unless the member opted out (notice_optouts.py). Texts are Slovenian by default through
gettext; in the member's own language (``members.language``, set on the member form or
through the API) where the notice is for a member.

Everything is one INSERT per channel into the notifications outbox in the caller's
transaction (docs/notifications.md): nothing here waits for a mail server, and a dedup
key per entitlement (and threshold) makes sure a member is never told twice. The
periodic check that finds expiring memberships and low punch cards is
member_notice_sweep.py; a gift voucher sold on the member page (web/member_entitlements.py)
calls ``queue_voucher_bought_notice``. Printed tickets and vouchers sold to a buyer who is
no member mail their own notice with the PDF link (tickets/notice.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial

from sqlalchemy import Connection, select

from cloud_bridge.db_schema import members
from cloud_bridge.notice_optouts import oneclick_link, opted_out, optout_link
from cloud_bridge.notifications import Notice, Notifier
from cloud_bridge.notifications.notice import Channel
from contracts.i18n import format_day, format_money, use_language
from contracts.i18n import gettext as _

KIND_EXPIRING = "membership_expiring"
KIND_PUNCH_LOW = "punch_card_low"
KIND_VOUCHER = "voucher_bought"


@dataclass(frozen=True, slots=True)
class Texts:
    """What one notice says: the e-mail's subject and body, and the (shorter) SMS."""

    subject: str
    body: str
    sms: str


@dataclass(frozen=True, slots=True)
class OptoutLinks:
    """Where a member turns notices off: the bridge's public address and the server
    link key (member-link.key). Without it the texts say to ask the reception."""

    base_url: str
    link_key: bytes

    def url(self, tenant: str, member_id: str) -> str:
        return optout_link(self.base_url, self.link_key, tenant, member_id)

    def oneclick_url(self, tenant: str, member_id: str) -> str:
        """For the List-Unsubscribe header (RFC 8058)."""
        return oneclick_link(self.base_url, self.link_key, tenant, member_id)


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str | None
    phone: str | None
    first_name: str
    member_id: str | None = None
    language: str = "sl"  # of the texts: the member's, or Slovenian for a non-member


def _footer(links: OptoutLinks | None, tenant: str, member_id: str | None) -> str:
    if links is None or member_id is None:
        return "\n\n" + _("To stop these messages, tell the reception.")
    return "\n\n" + _("To stop these messages, open %(url)s") % {
        "url": links.url(tenant, member_id)}


def _channels(notifier: Notifier, who: Recipient) -> list[tuple[Channel, str]]:
    """(channel, address) for each way this member can be reached from this bridge."""
    out: list[tuple[Channel, str]] = []
    if who.email and notifier.mailer is not None:
        out.append(("email", who.email))
    if who.phone and notifier.sms is not None:
        out.append(("sms", who.phone))
    return out


def send_to(conn: Connection, notifier: Notifier, tenant: str, kind: str, dedup: str,
            who: Recipient, texts: Callable[[], Texts], *,
            links: OptoutLinks | None = None, lang: str | None = None) -> int:
    """Queue ``texts`` (made in ``lang``, else the recipient's language) on every channel
    that reaches ``who``; the dedup key is ``<dedup>:<channel>``. Nothing for an
    opted-out member. Returns how many notices are new."""
    if who.member_id is not None and opted_out(conn, tenant, who.member_id, kind):
        return 0
    channels = _channels(notifier, who)
    if not channels:
        return 0
    with use_language(lang or who.language):
        said = texts()
        footer = _footer(links, tenant, who.member_id)
    oneclick = (links.oneclick_url(tenant, who.member_id)
                if links is not None and who.member_id is not None else None)
    queued = 0
    for channel, address in channels:
        email = channel == "email"
        queued += notifier.enqueue(conn, Notice(
            tenant=tenant, kind=kind, channel=channel, recipient=address,
            subject=said.subject, body=said.body + footer if email else said.sms,
            dedup_key=f"{dedup}:{channel}", unsubscribe_url=oneclick if email else None))
    return queued


def member_recipient(conn: Connection, tenant: str, member_id: str) -> Recipient | None:
    """The member's contact data; None for an unknown or blocked member."""
    row = conn.execute(select(members.c.first_name, members.c.email, members.c.phone,
                              members.c.blocked, members.c.language).where(
        members.c.tenant == tenant, members.c.id == member_id)).first()
    if row is None or row.blocked:
        return None
    return Recipient(email=row.email or None, phone=row.phone or None,
                     first_name=row.first_name or "", member_id=member_id,
                     language=row.language or "sl")


def expiring_texts(first_name: str, last_day: date, days_left: int) -> Texts:
    day = format_day(last_day, "medium")
    return Texts(
        subject=_("Your membership expires on %(day)s") % {"day": day},
        body=_("Hello %(name)s,\n\nyour membership is valid until %(day)s (%(days)s days "
               "from today). Renew it at the reception or online to keep training "
               "without a break.") % {"name": first_name, "day": day, "days": days_left},
        sms=_("Your membership is valid until %(day)s. Renew it at the reception.") % {
            "day": day})


def punch_low_texts(first_name: str, left: int) -> Texts:
    return Texts(
        subject=_("Your punch card is running low"),
        body=_("Hello %(name)s,\n\nyour punch card has %(left)s entries left. Buy a new "
               "one at the reception before it runs out.") % {"name": first_name,
                                                                "left": left},
        sms=_("Your punch card has %(left)s entries left.") % {"left": left})


def voucher_texts(first_name: str, code: str, amount_cents: int | None,
                  valid_until: date | None) -> Texts:
    value = format_money(amount_cents) if amount_cents is not None else ""
    until = format_day(valid_until, "medium") if valid_until else ""
    details = _("Voucher code: %(code)s") % {"code": code}
    if value:
        details += "\n" + _("Value: %(value)s") % {"value": value}
    if until:
        details += "\n" + _("Valid until: %(day)s") % {"day": until}
    greeting = _("Hello %(name)s,") % {"name": first_name} if first_name else _("Hello,")
    return Texts(
        subject=_("Your gift voucher"),
        body=greeting + "\n\n" + _("thank you for buying a gift voucher.") + "\n\n"
        + details,
        sms=_("Gift voucher %(code)s bought. Thank you.") % {"code": code})


def queue_voucher_bought_notice(
        conn: Connection, notifier: Notifier, tenant: str, voucher_id: str, *,
        code: str, email: str | None = None, phone: str | None = None,
        member_id: str | None = None, amount_cents: int | None = None,
        valid_until: date | None = None, links: OptoutLinks | None = None,
        lang: str | None = None) -> int:
    """Tell the buyer a voucher was bought, in the caller's (the sale's) transaction.

    ``voucher_id`` keys the dedup (one notice per voucher and channel, however often it
    is called); ``code`` is what the buyer shows (printed in the text). The buyer is
    the member ``member_id`` (their address and phone, and their opt-out) or, for a
    buyer who is no member, ``email`` and/or ``phone``; given ones win over the
    member's. Returns how many notices were queued (0: no channel, opted out, or
    already queued)."""
    who = Recipient(email=email, phone=phone, first_name="")
    if member_id is not None:
        known = member_recipient(conn, tenant, member_id)
        if known is None:
            return 0
        who = Recipient(email=email or known.email, phone=phone or known.phone,
                        first_name=known.first_name, member_id=member_id,
                        language=known.language)
    return send_to(conn, notifier, tenant, KIND_VOUCHER, f"{KIND_VOUCHER}:{voucher_id}",
                   who, partial(voucher_texts, who.first_name, code, amount_cents, valid_until),
                   links=links, lang=lang)
