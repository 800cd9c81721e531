"""Delivers the outbox: a background thread wakes every second (or when told a notice
was written), claims due rows and hands them to the mailer or the SMS sender. Transient
failures come back with exponential backoff (30 s doubling, at most an hour) until
``max_attempts``; permanent ones are kept aside with the reason. A caller never waits
for a mail server: ``enqueue`` is one INSERT in the caller's own transaction."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine

from cloud_bridge.db_schema import write_tx
from cloud_bridge.notifications import outbox
from cloud_bridge.notifications.channels import (
    DeliveryDeferred,
    DeliveryRefused,
    Mailer,
    SmsSender,
)
from cloud_bridge.notifications.notice import Notice

log = logging.getLogger(__name__)

LEASE_MS = 5 * 60_000
BACKOFF_FIRST_MS = 30_000
BACKOFF_MAX_MS = 3_600_000


def _now_ms() -> int:
    return int(time.time() * 1000)


class Notifier:
    def __init__(self, engine: Engine, mailer: Mailer | None, sms: SmsSender | None, *,
                 max_attempts: int = 30, clock_ms: Callable[[], int] = _now_ms) -> None:
        self.engine = engine
        self.mailer = mailer
        self.sms = sms
        self.max_attempts = max_attempts
        self.clock_ms = clock_ms
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        outbox.ensure_notification_schema(engine)

    def enqueue(self, conn: Connection, notice: Notice) -> bool:
        """Write ``notice`` in the caller's transaction; False if its key was seen."""
        written = outbox.insert_notice(conn, notice, self.clock_ms())
        if written:
            self._wake.set()
        return written

    def enqueue_now(self, notice: Notice) -> bool:
        """``enqueue`` in a transaction of its own."""
        with write_tx(self.engine) as conn:
            return self.enqueue(conn, notice)

    def deliver_due(self, limit: int = 50) -> int:
        """Try every due row once; the number delivered."""
        now = self.clock_ms()
        delivered = 0
        for row in outbox.due_rows(self.engine, now, limit):
            with write_tx(self.engine) as conn:
                if not outbox.claim(conn, row, now + LEASE_MS):
                    continue
            delivered += self._deliver(row)
        return delivered

    def _deliver(self, row: outbox.OutboxRow) -> int:
        try:
            self._send(row)
        except DeliveryRefused as exc:
            log.warning("notification %s (%s) refused: %s", row.id, row.kind, exc)
            with write_tx(self.engine) as conn:
                outbox.mark_refused(conn, row.id, str(exc))
            return 0
        except DeliveryDeferred as exc:
            attempts = row.attempts + 1
            with write_tx(self.engine) as conn:
                if attempts >= self.max_attempts:
                    outbox.mark_refused(conn, row.id, f"gave up after {attempts} attempts: {exc}")
                else:
                    delay = min(BACKOFF_FIRST_MS * 2 ** (attempts - 1), BACKOFF_MAX_MS)
                    outbox.mark_deferred(conn, row.id, str(exc), self.clock_ms() + delay)
            log.info("notification %s (%s) deferred: %s", row.id, row.kind, exc)
            return 0
        with write_tx(self.engine) as conn:
            outbox.mark_sent(conn, row.id, self.clock_ms())
        log.info("notification %s (%s, %s) sent", row.id, row.kind, row.channel)
        return 1

    def _send(self, row: outbox.OutboxRow) -> None:
        if row.channel == "email":
            if self.mailer is None:
                raise DeliveryDeferred("no mail server is configured (--mail-url)")
            self.mailer.send(row.recipient, row.subject, row.body, row.unsubscribe_url)
        elif row.channel == "sms":
            if self.sms is None:
                raise DeliveryDeferred("no SMS provider is configured (--sms-url)")
            self.sms.send(row.recipient, row.body)
        else:
            raise DeliveryRefused(f"unknown channel {row.channel!r}")

    def start(self, interval_s: float = 1.0) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(interval_s,),
                                        name="notifier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None

    def _run(self, interval_s: float) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_due()
            except Exception:  # the loop must outlive a database hiccup; the row stays due
                log.exception("notification delivery pass failed; trying again")
            self._wake.wait(interval_s)
            self._wake.clear()
