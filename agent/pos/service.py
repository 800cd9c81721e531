"""ReceiptService: number, protect (ZOI), store, fiscalise, print, and answer for every
receipt afterwards. The one entry point for the HTTP endpoint and the MQTT commands.

Order of a sale (docs/pos.md, "Fiscal flow"):
  1. validate and compute the job (nothing is stored when it is refused);
  2. one transaction: idempotency key, next invoice number, ZOI, receipt row, FURS queue
     row and the ``pos.receipt`` outbox event - all or nothing, so a power cut leaves
     neither a gap nor a half receipt;
  3. submit to FURS with a short time limit; on timeout the receipt stays queued and is
     sent later by the worker with SubsequentSubmit=true;
  4. print (with EOR, or with a "pending" note); a printer error leaves it queued for
     printing, never renumbered.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from agent.pos import receipt_store as rs
from agent.pos.compose import compose
from agent.pos.deadline import subsequent_deadline
from agent.pos.errors import FursRejected, FursUnavailable, IdempotencyConflict, UnknownReceipt
from agent.pos.fiscal.zoi import compute_zoi, local_time, qr_data
from agent.pos.job import PrintJobRequest, parse_job
from agent.pos.layout import Issuer, render, ticket_blocks
from agent.pos.model import (
    FiscalState,
    InvoiceId,
    PrintState,
    Receipt,
    Sale,
    sale_from_dict,
    sale_to_dict,
)
from agent.pos.money import euros
from agent.pos.pos_config import PosConfig
from agent.pos.refund import parse_refund, refund_sale
from agent.store.local_store import LocalStore
from agent.store.outbox import Outbox
from contracts.events import utc_ts
from drivers.errors import DriverError
from drivers.escpos_render import Block
from drivers.protocols import Printer, PrintJob

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# (open transaction, invoice id, issue time): more rows or events that belong to a receipt
WithReceipt = Callable[[sqlite3.Connection, str, datetime], None]
# invoice id -> more blocks printed after the receipt's FURS code (a till's ticket codes)
Attachments = Callable[[str], Sequence[Block]]
NUMBERING_STRUCTURE = "B"  # numbers are allocated per electronic device (spec R_3.3)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Fiscaliser(Protocol):
    def submit_invoice(self, receipt: Receipt, *, subsequent: bool) -> str: ...


@dataclass(frozen=True, slots=True)
class ReceiptResult:
    invoice_id: str
    number: int
    issued_at: str
    total: str
    zoi: str
    qr: str
    eor: str | None
    fiscal_state: str
    error_code: str | None
    error_message: str | None
    print_state: str
    print_error: str | None
    copies: int
    deadline: str | None  # for receipts still owed to FURS
    at_risk: bool
    overdue: bool
    duplicate: bool = False

    @property
    def printed(self) -> bool:
        return self.print_state == PrintState.PRINTED.value

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "printed": self.printed}


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def request_hash(job: PrintJobRequest) -> str:
    dumped = job.model_dump(mode="json")
    if not dumped["tickets"]:
        del dumped["tickets"]  # a job without tickets hashes as it did before they existed
    body = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


class ReceiptService:
    def __init__(self, *, store: LocalStore, outbox: Outbox, pos: PosConfig, key: Any,
                 furs: Fiscaliser, printer: Printer, issuer: Issuer,
                 clock: Clock = utc_now) -> None:
        self.store = store
        self.outbox = outbox
        self.pos = pos
        self._key = key  # the taxpayer's RSA key: signs ZOIs, never leaves this object
        self.furs = furs
        self.printer = printer
        self.issuer = issuer
        self.clock = clock
        self._print_lock = threading.Lock()
        self._flight_lock = threading.Lock()
        self._in_flight: set[str] = set()
        # set by the worker: called when FURS answers again, to drain the queue now
        self.on_furs_back: Callable[[], None] | None = None
        # set by the till: what is printed with a receipt after its FURS code
        self.attachments: Attachments | None = None
        with self.store.transaction() as conn:
            rs.create_tickets_table(conn)

    # -- the sale --------------------------------------------------------------------------

    def submit(self, raw: Any, with_receipt: WithReceipt | None = None) -> ReceiptResult:
        """A sale. ``with_receipt`` runs inside the numbering transaction once the receipt
        is stored (the till writes its tickets and their events there: all or nothing)."""
        job = parse_job(raw)
        digest = request_hash(job)
        sale = compose(job)
        printed = [(t.label, t.code) for t in job.tickets]

        def also(conn: sqlite3.Connection, invoice_id: str, now: datetime) -> None:
            # the job's ticket codes, stored with the receipt (for printing and reprints)
            rs.insert_tickets(conn, invoice_id, printed)
            if with_receipt is not None:
                with_receipt(conn, invoice_id, now)

        return self._issue(job.idempotency_key, digest, lambda _conn: sale,
                           also if printed else with_receipt)

    def refund(self, raw: Any, with_receipt: WithReceipt | None = None) -> ReceiptResult:
        """A refund receipt for lines of an earlier receipt of this device (partial or
        whole), referencing it for FURS; numbered, fiscalised and printed like a sale.
        ``with_receipt`` as for submit (the till voids the refunded tickets there)."""
        req = parse_refund(raw)
        body = json.dumps(req.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        digest = "refund:" + hashlib.sha256(body.encode()).hexdigest()

        def build(conn: sqlite3.Connection) -> Sale:
            row = rs.get_receipt(conn, req.original)
            if row is None:
                raise UnknownReceipt(f"no receipt '{req.original}' on this device")
            original = self._receipt(row)
            issued = local_time(original.issued_at).strftime("%Y-%m-%dT%H:%M:%S")
            return refund_sale(req, original.sale, issued,
                               rs.refunded_quantities(conn, req.original))

        return self._issue(req.idempotency_key, digest, build, with_receipt)

    def refundable(self, invoice_id: str) -> list[dict[str, Any]]:
        """The lines of a receipt with what is left to refund of each."""
        row = self._row(invoice_id)
        sale = self._receipt(row).sale
        if sale.reference is not None:
            return []  # a refund is not refunded again
        with self.store.lock:
            refunded = rs.refunded_quantities(self.store.conn, invoice_id)
        return [{"line": i, "name": ln.name, "quantity": str(ln.quantity),
                 "left": str(ln.quantity - refunded.get(i, 0)), "total_cents": ln.total_cents}
                for i, ln in enumerate(sale.lines)]

    def _issue(self, key: str, digest: str, build: Callable[[sqlite3.Connection], Sale],
               with_receipt: WithReceipt | None = None) -> ReceiptResult:
        """Number, protect and store a receipt in one transaction (idempotent by key),
        then fiscalise and print it. ``build`` makes the sale inside the transaction."""
        now = self.clock()
        pos = self.pos
        with self.store.transaction() as conn:
            found = rs.find_key(conn, key)
            if found is not None:
                if found[0] != digest:
                    raise IdempotencyConflict(
                        f"idempotency key '{key}' was used for a different "
                        f"job (receipt {found[1]}); use a new key for a new sale")
                existing = found[1]
            else:
                existing = None
                sale = build(conn)
                number = rs.next_number(conn, pos.premise_id, pos.device_id)
                invoice = InvoiceId(pos.premise_id, pos.device_id, number)
                issued = local_time(now)
                zoi = compute_zoi(self._key, pos.tax_number, issued, number, pos.premise_id,
                                  pos.device_id, sale.totals.total_cents)
                qr = qr_data(zoi, pos.tax_number, issued)
                deadline = subsequent_deadline(issued, pos.deadline_working_days)
                data = {"invoice_id": str(invoice), "issued_at": issued.isoformat(),
                        "tax_number": pos.tax_number, "numbering_structure":
                        NUMBERING_STRUCTURE, "zoi": zoi, "qr": qr, **sale_to_dict(sale)}
                rs.insert_receipt(conn, invoice=invoice, issued_at=issued,
                                  total_cents=sale.totals.total_cents, zoi=zoi, qr=qr,
                                  deadline_ms=_ms(deadline),
                                  operator_tax_number=sale.operator.tax_number, data=data,
                                  now_ms=_ms(now))
                rs.store_key(conn, key, digest, str(invoice), _ms(now))
                # queued until an EOR arrives; the online attempt below comes first
                rs.enqueue(conn, str(invoice), _ms(now) + int(pos.retry_initial_s * 1000),
                           _ms(now))
                self.outbox.append(conn, "pos.receipt",
                                   {**data, "fiscal_state": FiscalState.PENDING.value,
                                    "eor": None, "deadline": utc_ts(deadline)}, now)
                if with_receipt is not None:
                    with_receipt(conn, str(invoice), now)
        if existing is not None:
            # a retried job: never a second number; print only if the first never got out
            self._print_original(existing)
            return self._result(existing, duplicate=True)
        invoice_id = str(invoice)
        self.fiscalise(invoice_id, subsequent=False)
        self._print_original(invoice_id)
        return self._result(invoice_id)

    def reprint(self, invoice_id: str) -> ReceiptResult:
        """Print the receipt again: the original if it never got out, else "KOPIJA n"
        (ZDavPR art. 6: copies are marked with their sequence number)."""
        row = self._row(invoice_id)
        if row.print_state is PrintState.PENDING:
            self._print_original(invoice_id)
        else:
            self._print_copy(invoice_id)
        return self._result(invoice_id)

    def status(self, invoice_id: str) -> ReceiptResult:
        return self._result(invoice_id)

    def resubmit(self, invoice_id: str) -> ReceiptResult:
        """Queue a rejected receipt again (after fixing e.g. the premise registration)."""
        row = self._row(invoice_id)
        if row.fiscal_state is FiscalState.FAILED_REJECTED:
            now = self.clock()
            with self.store.transaction() as conn:
                rs.set_fiscal(conn, invoice_id, FiscalState.PENDING_SUBSEQUENT, now_ms=_ms(now))
                rs.enqueue(conn, invoice_id, _ms(now), _ms(now))
        return self._result(invoice_id)

    # -- FURS ------------------------------------------------------------------------------

    def fiscalise(self, invoice_id: str, *, subsequent: bool) -> FiscalState:
        with self._flight_lock:
            if invoice_id in self._in_flight:
                return FiscalState.PENDING
            self._in_flight.add(invoice_id)
        try:
            return self._fiscalise(invoice_id, subsequent)
        finally:
            with self._flight_lock:
                self._in_flight.discard(invoice_id)

    def _fiscalise(self, invoice_id: str, subsequent: bool) -> FiscalState:
        row = self._row(invoice_id)
        if row.fiscal_state in (FiscalState.FISCALISED, FiscalState.FAILED_REJECTED):
            return row.fiscal_state
        receipt = self._receipt(row)
        try:
            eor = self.furs.submit_invoice(receipt, subsequent=subsequent)
        except FursUnavailable as exc:
            self._defer(invoice_id, str(exc))
            return FiscalState.PENDING_SUBSEQUENT
        except FursRejected as exc:
            now = self.clock()
            log.error("FURS rejected receipt %s: %s", invoice_id, exc.code)
            with self.store.transaction() as conn:
                rs.set_fiscal(conn, invoice_id, FiscalState.FAILED_REJECTED, now_ms=_ms(now),
                              error_code=exc.code, error_message=exc.message)
                rs.dequeue(conn, invoice_id)
                self.outbox.append(conn, "pos.fiscal_rejected",
                                   {"invoice_id": invoice_id, "error_code": exc.code,
                                    "error_message": exc.message}, now)
            return FiscalState.FAILED_REJECTED
        now = self.clock()
        with self.store.transaction() as conn:
            rs.set_fiscal(conn, invoice_id, FiscalState.FISCALISED, now_ms=_ms(now), eor=eor)
            rs.dequeue(conn, invoice_id)
            self.outbox.append(conn, "pos.fiscalised",
                               {"invoice_id": invoice_id, "eor": eor, "subsequent": subsequent,
                                "zoi": row.zoi}, now)
            waiting = rs.queue_depth(conn)
        if waiting and self.on_furs_back is not None:
            self.on_furs_back()
        return FiscalState.FISCALISED

    def _defer(self, invoice_id: str, reason: str) -> None:
        now = self.clock()
        with self.store.transaction() as conn:
            delay = min(self.pos.retry_max_s,
                        self.pos.retry_initial_s * 2 ** min(rs.attempts(conn, invoice_id), 30))
            delay *= random.uniform(0.8, 1.2)  # spread many tills' retries apart
            rs.set_fiscal(conn, invoice_id, FiscalState.PENDING_SUBSEQUENT, now_ms=_ms(now))
            rs.reschedule(conn, invoice_id, _ms(now) + int(delay * 1000), reason)
        log.warning("receipt %s not fiscalised yet (%s); retry in %.0f s", invoice_id, reason,
                    delay)

    def process_due(self, limit: int = 20) -> int:
        """Submit queued receipts whose retry time has come (SubsequentSubmit=true)."""
        with self.store.lock:
            due = rs.due(self.store.conn, _ms(self.clock()), limit)
        for invoice_id, _attempts in due:
            self.fiscalise(invoice_id, subsequent=True)
        return len(due)

    def retry_all_now(self) -> None:
        now = _ms(self.clock())
        with self.store.transaction() as conn:
            conn.execute("UPDATE pos_fiscal_queue SET next_attempt_ms = ? "
                         "WHERE next_attempt_ms > ?", (now, now))

    def next_due_in_s(self) -> float | None:
        with self.store.lock:
            due = rs.next_due_ms(self.store.conn)
        return None if due is None else max(0.0, (due - _ms(self.clock())) / 1000)

    # -- printing --------------------------------------------------------------------------

    def _print_original(self, invoice_id: str) -> None:
        with self._print_lock:
            row = self._row(invoice_id)
            if row.print_state is not PrintState.PENDING:
                return  # printed, or uncertain after a crash: never a second original
            payload = render(self._receipt(row), self.issuer, self.pos.columns, eor=row.eor,
                             extra=self._attached(invoice_id))
            self._set_print(invoice_id, PrintState.PRINTING)
            try:
                self.printer.print_job(PrintJob(invoice_id, payload, {"invoice_id": invoice_id}))
            except (DriverError, OSError) as exc:
                log.warning("receipt %s not printed (%s); kept for retry", invoice_id, exc)
                self._set_print(invoice_id, PrintState.PENDING, str(exc))
                return
            self._set_print(invoice_id, PrintState.PRINTED)

    def _print_copy(self, invoice_id: str) -> None:
        with self._print_lock:
            row = self._row(invoice_id)
            copy = row.copies + 1
            payload = render(self._receipt(row), self.issuer, self.pos.columns, eor=row.eor,
                             copy=copy, extra=self._attached(invoice_id))
            self.printer.print_job(PrintJob(f"{invoice_id}-K{copy}", payload,
                                            {"invoice_id": invoice_id, "copy": str(copy)}))
            with self.store.transaction() as conn:
                rs.next_copy(conn, invoice_id, _ms(self.clock()))

    def _attached(self, invoice_id: str) -> Sequence[Block]:
        """Printed after the FURS code: the job's tickets, then the till's."""
        with self.store.lock:
            printed = rs.tickets_of(self.store.conn, invoice_id)
        till = () if self.attachments is None else self.attachments(invoice_id)
        return [*ticket_blocks(printed, self.pos.columns), *till]

    def print_pending(self) -> int:
        with self.store.lock:
            rows = rs.receipts_in(self.store.conn, printing=PrintState.PENDING, limit=50)
        for row in rows:
            self._print_original(row.invoice_id)
        return len(rows)

    def recover(self) -> int:
        """After a restart: a receipt caught mid-print may be on paper; mark it uncertain
        instead of printing a second original."""
        with self.store.transaction() as conn:
            cur = conn.execute("UPDATE pos_receipts SET print_state = ? WHERE print_state = ?",
                               (PrintState.UNCERTAIN.value, PrintState.PRINTING.value))
            return cur.rowcount

    def _set_print(self, invoice_id: str, state: PrintState, error: str | None = None) -> None:
        with self.store.transaction() as conn:
            rs.set_print(conn, invoice_id, state, now_ms=_ms(self.clock()), error=error)

    # -- reading ---------------------------------------------------------------------------

    def _row(self, invoice_id: str) -> rs.ReceiptRow:
        with self.store.lock:
            row = rs.get_receipt(self.store.conn, invoice_id)
        if row is None:
            raise UnknownReceipt(f"no receipt '{invoice_id}' on this device")
        return row

    def _receipt(self, row: rs.ReceiptRow) -> Receipt:
        d = row.data
        return Receipt(invoice=row.invoice, issued_at=datetime.fromisoformat(d["issued_at"]),
                       tax_number=d["tax_number"], numbering_structure=d["numbering_structure"],
                       sale=sale_from_dict(d, row.operator_tax_number), zoi=row.zoi, qr=row.qr)

    def _result(self, invoice_id: str, duplicate: bool = False) -> ReceiptResult:
        return self._to_result(self._row(invoice_id), duplicate)

    def _to_result(self, row: rs.ReceiptRow, duplicate: bool = False) -> ReceiptResult:
        now = self.clock()
        deadline = datetime.fromtimestamp(row.deadline_ms / 1000, UTC)
        owed = row.fiscal_state in (FiscalState.PENDING, FiscalState.PENDING_SUBSEQUENT)
        return ReceiptResult(
            invoice_id=row.invoice_id, number=row.number, issued_at=row.issued_at,
            total=str(euros(row.total_cents)), zoi=row.zoi, qr=row.qr, eor=row.eor,
            fiscal_state=row.fiscal_state.value, error_code=row.error_code,
            error_message=row.error_message, print_state=row.print_state.value,
            print_error=row.print_error, copies=row.copies,
            deadline=utc_ts(deadline) if owed else None,
            at_risk=owed and now >= deadline - timedelta(hours=self.pos.at_risk_hours),
            overdue=owed and now >= deadline, duplicate=duplicate)

    def receipts(self, state: FiscalState | None = None, limit: int = 100,
                 newest_first: bool = False) -> list[ReceiptResult]:
        with self.store.lock:
            rows = rs.receipts_in(self.store.conn, fiscal=state, limit=limit,
                                  newest_first=newest_first)
        return [self._to_result(r) for r in rows]

    def at_risk(self) -> list[ReceiptResult]:
        owed = (self.receipts(FiscalState.PENDING, 10_000)
                + self.receipts(FiscalState.PENDING_SUBSEQUENT, 10_000))
        return [r for r in owed if r.at_risk]

    def summary(self) -> dict[str, Any]:
        with self.store.lock:
            conn = self.store.conn
            counts = dict(conn.execute("SELECT fiscal_state, COUNT(*) FROM pos_receipts "
                                       "GROUP BY fiscal_state").fetchall())
            printing = dict(conn.execute("SELECT print_state, COUNT(*) FROM pos_receipts "
                                         "GROUP BY print_state").fetchall())
            depth = rs.queue_depth(conn)
            last = rs.last_number(conn, self.pos.premise_id, self.pos.device_id)
        risky = self.at_risk()
        return {"fiscal": counts, "print": printing, "queue_depth": depth,
                "last_number": last, "at_risk": len(risky),
                "overdue": sum(1 for r in risky if r.overdue)}
