"""The legal alerts of a tenant's month (legal_alerts.py over the month report), their
texts in the reader's language, and the e-mail to the responsible managers — the
tenant's staff users who may edit attendance — through the shared notification outbox
(cloud_bridge/notifications), one e-mail per alert and manager, never twice."""

from __future__ import annotations

from sqlalchemy import Connection, select

from cloud_bridge.attendance.legal_alerts import Alert, legal_alerts
from cloud_bridge.attendance.reports import month_report
from cloud_bridge.notifications import Notice, Notifier
from cloud_bridge.web.auth_schema import users
from cloud_bridge.web.roles import allowed
from contracts.i18n import N_, format_number
from contracts.i18n import gettext as _

TEXTS = {
    "missing_departure": N_("%(day)s: missing departure (ZEPDSV art. 18)"),
    "daily_rest": N_("%(day)s: only %(hours)s h of rest before the next arrival; "
                     "at least 12 h are due (ZDR-1 art. 155)"),
    "daily_rest_uneven": N_("%(day)s: only %(hours)s h of rest before the next arrival; "
                            "with an uneven schedule at least 11 h are due (ZDR-1 art. "
                            "155(2))"),
    "weekly_rest": N_("week from %(day)s: the longest rest was %(hours)s h; at least 24 h "
                      "in a row are due, on average over 14 days (ZDR-1 art. 156)"),
    "overtime_week": N_("week from %(day)s: %(hours)s h of overtime, over the 8 h a week "
                        "allowed (ZDR-1 art. 144)"),
    "overtime_month": N_("month from %(day)s: %(hours)s h of overtime, over the 20 h a "
                         "month allowed (ZDR-1 art. 144)"),
    "overtime_year": N_("year to the month of %(day)s: %(hours)s h of overtime, over the "
                        "170 h a year allowed (ZDR-1 art. 144)"),
    "no_break": N_("%(day)s: %(hours)s h worked without a break (ZDR-1 art. 154)"),
}


def alert_text(a: Alert) -> str:
    return _(TEXTS[a.code]) % {"day": f"{a.day.day}. {a.day.month}. {a.day.year}",
                               "hours": format_number(round(a.hours, 1))}


def tenant_alerts(conn: Connection, tenant: str, year: int, month: int,
                  employee: str | None = None) -> list[tuple[str, Alert]]:
    """(employee's name, alert) for every employee with a record in the month (or for
    one employee), under the tenant's rules."""
    report = month_report(conn, tenant, year, month, employee=employee)
    prev_year, prev_month = (year, month - 1) if month > 1 else (year - 1, 12)
    prev = month_report(conn, tenant, prev_year, prev_month, employee=employee)
    before: dict[str, float] = {}
    for m in range(1, month):  # the year's overtime before this month, for its limit
        for e in (prev if m == month - 1 else
                  month_report(conn, tenant, year, m, employee=employee)).employees:
            before[e.employee] = before.get(e.employee, 0.0) + e.sheet.totals.overtime_s
    days_before = {e.employee: e.sheet.days for e in prev.employees}
    return [(e.name or e.employee, a) for e in report.employees
            for a in legal_alerts(e.employee, e.sheet.days, before.get(e.employee, 0.0),
                                  uneven_schedule=report.rules.uneven_schedule,
                                  days_before=days_before.get(e.employee, ()))]


def managers(conn: Connection, tenant: str) -> list[str]:
    """The e-mail addresses (usernames) of the tenant's active attendance editors."""
    rows = conn.execute(select(users.c.username, users.c.role).where(
        users.c.tenant == tenant, users.c.active.is_(True)))
    return sorted(r.username for r in rows
                  if allowed(r.role, "attendance.edit") and "@" in r.username)


def notify_managers(conn: Connection, notifier: Notifier, tenant: str,
                    alerts: list[tuple[str, Alert]]) -> int:
    """Enqueue one e-mail per new alert and manager in the caller's transaction; how
    many were new (an alert already mailed is skipped by its dedup key)."""
    new = 0
    for manager in managers(conn, tenant):
        for name, a in alerts:
            text = alert_text(a)
            new += notifier.enqueue(conn, Notice(
                tenant, "edc_alert", "email", manager,
                _("Working time alert: %(name)s") % {"name": name},
                _("Employee %(name)s (%(number)s):\n%(alert)s\n\nThe timesheets: /t/%(tenant)s"
                  "/alerts") % {"name": name, "number": a.employee, "alert": text,
                                "tenant": tenant},
                f"{a.key}:{manager}"))
    return new
