"""The periodic check of the legal alerts: every ``interval_s`` (an hour by default) the
bridge looks at each tenant's current month, and in the first days of a month at the
previous one too (a missing departure on the 31st is found on the 1st), and e-mails the
managers what is new (alert_notices.py; an alert already mailed is never mailed again,
by its dedup key). Texts in Slovenian, the managers' language by default.

The dashboard's button does the same at once for one month; this sweep makes sure no
alert waits for someone to press it. The same hourly pass erases the phone punches'
locations whose retention ended (phone_punch.erase_expired_everywhere), also where no
phone punched since."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime

from sqlalchemy import Engine, inspect, select

from cloud_bridge.attendance.alert_notices import notify_managers, tenant_alerts
from cloud_bridge.attendance.phone_punch import erase_expired_everywhere
from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.notifications import Notifier
from cloud_bridge.periodic_pass import PeriodicPass
from cloud_bridge.web.auth_schema import users
from cloud_bridge.web.context import LOCAL_TZ
from contracts.i18n import use_language

log = logging.getLogger(__name__)

# the first days of a month also look back at the previous month
LOOK_BACK_DAYS = 3


def months_to_check(today: date) -> list[tuple[int, int]]:
    months = [(today.year, today.month)]
    if today.day <= LOOK_BACK_DAYS:
        months.insert(0, (today.year - 1, 12) if today.month == 1
                      else (today.year, today.month - 1))
    return months


def sweep(engine: Engine, notifier: Notifier, today: date, lang: str = "sl") -> int:
    """Enqueue the new alert e-mails of every tenant with staff users (the managers are
    among them: a tenant without any has no one to tell); how many."""
    if not inspect(engine).has_table(users.name):  # a bridge without the web pages
        return 0
    with read_tx(engine) as conn:
        tenant_ids = sorted(set(conn.execute(select(users.c.tenant)).scalars()))
    queued = 0
    for tenant in tenant_ids:
        for year, month in months_to_check(today):
            with use_language(lang), write_tx(engine) as conn:
                found = tenant_alerts(conn, tenant, year, month)
                queued += notify_managers(conn, notifier, tenant, found)
    return queued


class AlertSweep:
    def __init__(self, engine: Engine, notifier: Notifier, *, interval_s: float = 3600.0,
                 today: Callable[[], date] = lambda: datetime.now(LOCAL_TZ).date()) -> None:
        self.engine = engine
        self.notifier = notifier
        self.today = today
        self._pass = PeriodicPass("edc-alert-sweep", self._once, interval_s)

    def start(self) -> None:
        self._pass.start()

    def stop(self) -> None:
        self._pass.stop()

    def _once(self) -> None:
        queued = sweep(self.engine, self.notifier, self.today())
        if queued:
            log.info("working-time alerts: %d new e-mails queued", queued)
        with write_tx(self.engine) as conn:
            erased = erase_expired_everywhere(conn, datetime.now(UTC))
        if erased:
            log.info("punch locations past their retention erased: %d", erased)
