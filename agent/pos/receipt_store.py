"""SQL for receipts: numbering, rows, idempotency keys and the FURS queue (tables of
schema ``_v3``). Every function that writes takes the caller's open transaction."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from agent.pos.model import FiscalState, InvoiceId, PrintState


def next_number(conn: sqlite3.Connection, premise: str, device: str) -> int:
    """Bump and read the device's counter in the caller's transaction: if that transaction
    rolls back (power cut, error before commit) the number is not used up."""
    row = conn.execute(
        "INSERT INTO pos_counters(premise, device, last_number) VALUES (?, ?, 1) "
        "ON CONFLICT(premise, device) DO UPDATE SET last_number = last_number + 1 "
        "RETURNING last_number", (premise, device)).fetchone()
    return int(row[0])


def last_number(conn: sqlite3.Connection, premise: str, device: str) -> int:
    row = conn.execute("SELECT last_number FROM pos_counters WHERE premise = ? AND device = ?",
                       (premise, device)).fetchone()
    return 0 if row is None else int(row[0])


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    invoice_id: str
    number: int
    issued_at: str
    total_cents: int
    zoi: str
    qr: str
    eor: str | None
    fiscal_state: FiscalState
    error_code: str | None
    error_message: str | None
    deadline_ms: int
    print_state: PrintState
    print_error: str | None
    copies: int
    operator_tax_number: int | None
    data: dict[str, Any]

    @property
    def invoice(self) -> InvoiceId:
        return InvoiceId.parse(self.invoice_id)


_COLUMNS = ("invoice_id, number, issued_at, total_cents, zoi, qr, eor, fiscal_state, "
            "error_code, error_message, deadline_ms, print_state, print_error, copies, "
            "operator_tax_number, data")


def _row(r: tuple[Any, ...]) -> ReceiptRow:
    return ReceiptRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], FiscalState(r[7]), r[8], r[9],
                      r[10], PrintState(r[11]), r[12], r[13], r[14], json.loads(r[15]))


def insert_receipt(conn: sqlite3.Connection, *, invoice: InvoiceId, issued_at: datetime,
                   total_cents: int, zoi: str, qr: str, deadline_ms: int,
                   operator_tax_number: int | None, data: dict[str, Any], now_ms: int) -> None:
    conn.execute(
        "INSERT INTO pos_receipts(invoice_id, premise, device, number, issued_at, issued_ms, "
        "total_cents, zoi, qr, eor, fiscal_state, deadline_ms, print_state, copies, "
        "operator_tax_number, data, created_ms, updated_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, 0, ?, ?, ?, ?)",
        (str(invoice), invoice.premise, invoice.device, invoice.number, issued_at.isoformat(),
         int(issued_at.timestamp() * 1000), total_cents, zoi, qr, FiscalState.PENDING.value,
         deadline_ms, PrintState.PENDING.value, operator_tax_number,
         json.dumps(data, separators=(",", ":"), ensure_ascii=False), now_ms, now_ms))


def get_receipt(conn: sqlite3.Connection, invoice_id: str) -> ReceiptRow | None:
    r = conn.execute(f"SELECT {_COLUMNS} FROM pos_receipts WHERE invoice_id = ?",
                     (invoice_id,)).fetchone()
    return None if r is None else _row(r)


def receipts_in(conn: sqlite3.Connection, *, fiscal: FiscalState | None = None,
                printing: PrintState | None = None, limit: int = 1000,
                newest_first: bool = False) -> list[ReceiptRow]:
    where, args = [], []
    if fiscal is not None:
        where.append("fiscal_state = ?")
        args.append(fiscal.value)
    if printing is not None:
        where.append("print_state = ?")
        args.append(printing.value)
    sql = f"SELECT {_COLUMNS} FROM pos_receipts"
    if where:
        sql += " WHERE " + " AND ".join(where)
    order = " ORDER BY issued_ms DESC, number DESC" if newest_first else \
        " ORDER BY issued_ms, number"
    rows = conn.execute(sql + order + " LIMIT ?", (*args, limit)).fetchall()
    return [_row(r) for r in rows]


def set_fiscal(conn: sqlite3.Connection, invoice_id: str, state: FiscalState, *, now_ms: int,
               eor: str | None = None, error_code: str | None = None,
               error_message: str | None = None) -> None:
    conn.execute("UPDATE pos_receipts SET fiscal_state = ?, eor = COALESCE(?, eor), "
                 "error_code = ?, error_message = ?, updated_ms = ? WHERE invoice_id = ?",
                 (state.value, eor, error_code, error_message, now_ms, invoice_id))


def set_print(conn: sqlite3.Connection, invoice_id: str, state: PrintState, *, now_ms: int,
              error: str | None = None) -> None:
    conn.execute("UPDATE pos_receipts SET print_state = ?, print_error = ?, updated_ms = ? "
                 "WHERE invoice_id = ?", (state.value, error, now_ms, invoice_id))


def next_copy(conn: sqlite3.Connection, invoice_id: str, now_ms: int) -> int:
    row = conn.execute("UPDATE pos_receipts SET copies = copies + 1, updated_ms = ? "
                       "WHERE invoice_id = ? RETURNING copies", (now_ms, invoice_id)).fetchone()
    return int(row[0])


def refunded_quantities(conn: sqlite3.Connection, original: str) -> dict[int, Decimal]:
    """Per line index of ``original``: the quantity its refund receipts gave back so far
    (each refund stores ``refund_lines`` = {index: quantity} beside its reference)."""
    out: dict[int, Decimal] = {}
    rows = conn.execute("SELECT json_extract(data, '$.refund_lines') FROM pos_receipts "
                        "WHERE json_extract(data, '$.reference.invoice_id') = ?",
                        (original,)).fetchall()
    for (text,) in rows:
        for index, qty in json.loads(text or "{}").items():
            out[int(index)] = out.get(int(index), Decimal(0)) + Decimal(qty)
    return out


# -- idempotency ---------------------------------------------------------------------------


def find_key(conn: sqlite3.Connection, key: str) -> tuple[str, str] | None:
    """(request hash, invoice id) stored for an idempotency key."""
    r = conn.execute("SELECT request_hash, invoice_id FROM pos_idempotency WHERE key = ?",
                     (key,)).fetchone()
    return None if r is None else (str(r[0]), str(r[1]))


def store_key(conn: sqlite3.Connection, key: str, request_hash: str, invoice_id: str,
              now_ms: int) -> None:
    conn.execute("INSERT INTO pos_idempotency(key, request_hash, invoice_id, created_ms) "
                 "VALUES (?, ?, ?, ?)", (key, request_hash, invoice_id, now_ms))


# -- tickets printed with a receipt --------------------------------------------------------

# the ticket codes a job asked to print (job.tickets), kept with their receipt so that a
# print retried after a printer error and every reprint carry them; never in the receipt's
# data (that is the pos.receipt event). Created here, not by a schema migration, like the
# till's own tables: a device that never printed a ticket has an empty table.
_TICKETS = ("CREATE TABLE IF NOT EXISTS pos_receipt_tickets (invoice_id TEXT NOT NULL, "
            "seq INTEGER NOT NULL, label TEXT NOT NULL, code TEXT NOT NULL, "
            "PRIMARY KEY (invoice_id, seq))")


def create_tickets_table(conn: sqlite3.Connection) -> None:
    conn.execute(_TICKETS)


def insert_tickets(conn: sqlite3.Connection, invoice_id: str,
                   tickets: list[tuple[str, str]]) -> None:
    """(label, code) of each ticket, in the job's order."""
    conn.executemany("INSERT INTO pos_receipt_tickets(invoice_id, seq, label, code) "
                     "VALUES (?, ?, ?, ?)",
                     [(invoice_id, i, label, code) for i, (label, code) in enumerate(tickets)])


def tickets_of(conn: sqlite3.Connection, invoice_id: str) -> list[tuple[str, str]]:
    rows = conn.execute("SELECT label, code FROM pos_receipt_tickets WHERE invoice_id = ? "
                        "ORDER BY seq", (invoice_id,)).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


# -- FURS queue ----------------------------------------------------------------------------


def enqueue(conn: sqlite3.Connection, invoice_id: str, next_attempt_ms: int,
            now_ms: int) -> None:
    conn.execute("INSERT INTO pos_fiscal_queue(invoice_id, attempts, next_attempt_ms, "
                 "created_ms) VALUES (?, 0, ?, ?) ON CONFLICT(invoice_id) DO UPDATE SET "
                 "next_attempt_ms = excluded.next_attempt_ms", (invoice_id, next_attempt_ms,
                                                                now_ms))


def dequeue(conn: sqlite3.Connection, invoice_id: str) -> None:
    conn.execute("DELETE FROM pos_fiscal_queue WHERE invoice_id = ?", (invoice_id,))


def due(conn: sqlite3.Connection, now_ms: int, limit: int = 20) -> list[tuple[str, int]]:
    """(invoice id, attempts so far) of queued receipts whose retry time has come."""
    rows = conn.execute("SELECT invoice_id, attempts FROM pos_fiscal_queue WHERE "
                        "next_attempt_ms <= ? ORDER BY created_ms, invoice_id LIMIT ?",
                        (now_ms, limit)).fetchall()
    return [(str(r[0]), int(r[1])) for r in rows]


def reschedule(conn: sqlite3.Connection, invoice_id: str, next_attempt_ms: int,
               error: str) -> None:
    conn.execute("UPDATE pos_fiscal_queue SET attempts = attempts + 1, next_attempt_ms = ?, "
                 "last_error = ? WHERE invoice_id = ?", (next_attempt_ms, error, invoice_id))


def attempts(conn: sqlite3.Connection, invoice_id: str) -> int:
    row = conn.execute("SELECT attempts FROM pos_fiscal_queue WHERE invoice_id = ?",
                       (invoice_id,)).fetchone()
    return 0 if row is None else int(row[0])


def queue_depth(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM pos_fiscal_queue").fetchone()[0])


def next_due_ms(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT MIN(next_attempt_ms) FROM pos_fiscal_queue").fetchone()
    return None if row[0] is None else int(row[0])
