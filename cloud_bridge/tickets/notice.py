"""The buyer's e-mail with the ticket: written to the notification outbox in the issuing
transaction (cloud_bridge/notifications), in Slovenian, once per ticket (the dedup key is
the ticket id). The Notifier sends plain text only, so the e-mail carries the code as text
and, when the bridge has a link key, a secret link to the printable PDF with the QR."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from cloud_bridge.notifications import Notice
from cloud_bridge.tickets.documents import kind_label, short_id, validity, what_it_grants
from contracts.i18n import gettext as _
from contracts.i18n import use_language

KIND = "ticket_bought"


def link_token(link_key: bytes, tenant: str, ticket_id: str) -> str:
    """The secret in a buyer's PDF link: whoever has the link has the ticket anyway."""
    mac = hmac.new(link_key, f"ticket-pdf\x00{tenant}\x00{ticket_id}".encode(),
                   hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()


def pdf_link(base_url: str, link_key: bytes, tenant: str, ticket_id: str) -> str:
    token = link_token(link_key, tenant, ticket_id)
    return f"{base_url.rstrip('/')}/ticket-pdf/{tenant}/{ticket_id}/{token}"


def ticket_notice(row: dict[str, Any], code: str, tenant_name: str,
                  link: str | None) -> Notice:
    """The e-mail to the buyer of ``row`` (which has a ``buyer_email``)."""
    if not row.get("buyer_email"):
        raise ValueError("the ticket has no buyer e-mail")
    with use_language("sl"):
        subject = f"{tenant_name}: {kind_label(row['kind'])} {short_id(row['id'])}"
        lines = [_("Thank you for your purchase."), "",
                 f"{kind_label(row['kind'])}: {what_it_grants(row)}", validity(row),
                 _("Ticket no. %(id)s") % {"id": short_id(row["id"])}, ""]
        if link:
            lines += [_("Print the ticket or show it on your phone:"), link, ""]
        lines += [_("The code of your ticket (the QR code holds the same text):"), code, "",
                  _("Whoever shows the code first uses it: keep it to yourself.")]
    return Notice(tenant=row["tenant"], kind=KIND, channel="email",
                  recipient=row["buyer_email"], subject=subject, body="\n".join(lines),
                  dedup_key=f"ticket:{row['id']}")
