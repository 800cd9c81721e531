"""The employee is told a manager's decision on their absence request by e-mail (when
their record has an address), in Slovenian by default, through the shared notification
outbox in the decision's own transaction: one e-mail per request, never two."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, select

from cloud_bridge.attendance.labels import ABSENCE_NAMES
from cloud_bridge.attendance.schema import absence_requests
from cloud_bridge.db_schema import members
from cloud_bridge.notifications import Notice, Notifier
from contracts.i18n import N_, format_day, use_language
from contracts.i18n import gettext as _

SUBJECTS = {"approved": N_("Your absence request was approved"),
            "refused": N_("Your absence request was refused")}
BODIES = {"approved": N_("Hello %(name)s,\n\nyour request for %(kind)s (%(days)s) was "
                         "approved."),
          "refused": N_("Hello %(name)s,\n\nyour request for %(kind)s (%(days)s) was "
                        "refused.")}


def notify_decision(conn: Connection, notifier: Notifier, tenant: str, request_id: int,
                    lang: str = "sl") -> bool:
    """Enqueue the e-mail of a decided request; False when there is no one to tell (no
    address) or it was enqueued before."""
    row = conn.execute(
        select(absence_requests.c.state, absence_requests.c.kind,
               absence_requests.c.first_day, absence_requests.c.last_day,
               absence_requests.c.decision_reason, members.c.email, members.c.first_name)
        .join(members, (members.c.tenant == absence_requests.c.tenant)
              & (members.c.id == absence_requests.c.employee))
        .where(absence_requests.c.tenant == tenant,
               absence_requests.c.id == request_id)).first()
    if row is None or row.state not in SUBJECTS or not row.email or "@" not in row.email:
        return False
    with use_language(lang):
        first, last = date.fromisoformat(row.first_day), date.fromisoformat(row.last_day)
        days = format_day(first) if first == last else f"{format_day(first)}–{format_day(last)}"
        body = _(BODIES[row.state]) % {"name": row.first_name or "",
                                       "kind": _(ABSENCE_NAMES[row.kind]), "days": days}
        if row.decision_reason:
            body += "\n" + _("Reason: %(reason)s") % {"reason": row.decision_reason}
        subject = _(SUBJECTS[row.state])
    return notifier.enqueue(conn, Notice(tenant, "absence_decision", "email", row.email,
                                         subject, body, f"absence-decision:{request_id}"))
