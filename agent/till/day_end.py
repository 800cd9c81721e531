"""Cash moves and the day's closing on top of the receipt service's store: recorded in
one transaction with their outbox event (``till.cash_move``, ``till.closing``, which the
bridge receives like every event), then the report is printed."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from agent.pos.fiscal.zoi import local_time
from agent.pos.service import ReceiptService
from agent.till.cash_book import add_move, close_day, ensure_tables
from agent.till.closing_print import render_closing
from drivers.errors import DriverError
from drivers.protocols import PrintJob

log = logging.getLogger(__name__)


class DayEnd:
    def __init__(self, service: ReceiptService) -> None:
        self.service = service
        with service.store.transaction() as conn:
            ensure_tables(conn)

    def move(self, kind: str, amount_cents: int, cashier: str, note: str) -> None:
        now = self.service.clock()
        with self.service.store.transaction() as conn:
            add_move(conn, kind, amount_cents, cashier, note, int(now.timestamp() * 1000))
            self.service.outbox.append(conn, "till.cash_move",
                                       {"kind": kind, "amount_cents": amount_cents,
                                        "cashier": cashier, "note": note}, now)

    def close(self, cashier: str) -> dict[str, Any]:
        svc = self.service
        now = svc.clock()
        with svc.store.transaction() as conn:
            closing = close_day(conn, svc.pos.premise_id, svc.pos.device_id, cashier,
                                int(now.timestamp() * 1000))
            svc.outbox.append(conn, "till.closing", closing.report, now)
        stamp = local_time(now).strftime("%d.%m.%Y %H:%M:%S")
        payload = render_closing(closing.report, svc.issuer, svc.pos.columns, stamp)
        try:
            svc.printer.print_job(PrintJob(f"closing-{closing.id}-{uuid.uuid4().hex[:6]}",
                                           payload, {"closing": str(closing.id)}))
            printed = True
        except (DriverError, OSError) as exc:
            # the closing is recorded and sent; the paper copy can be printed again
            log.warning("closing %d not printed: %s", closing.id, exc)
            printed = False
        return {**closing.report, "printed": printed}
