"""Printed tickets and vouchers on the device: its own uses and the bridge's marks.

Keyed by the ticket id inside the signed code (contracts/ticket_token.py); the code is a
bearer document and is never stored. ``ticket_uses`` counts what this device took and is
never touched by the bridge; ``ticket_marks`` holds what the bridge says (refunded, uses
made on other devices). A device's view of a ticket = its own uses + the others' uses.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from contracts.membership_changes import TicketMark

PRUNE_AFTER_S = 86400


@dataclass(frozen=True, slots=True)
class TicketUse:
    entries_used: int
    value_used_cents: int
    revoked: bool


def _others(raw: str | None, device: str) -> int:
    if not raw:
        return 0
    return sum(int(n) for d, n in json.loads(raw).items() if d != device)


def ticket_use(conn: sqlite3.Connection, ticket_id: str, device: str) -> TicketUse:
    """Entries and cents used so far, everywhere this device knows of."""
    row = conn.execute(
        "SELECT u.entries_used, u.value_used_cents, m.revoked, m.used_remote, m.value_remote "
        "FROM (SELECT ? AS id) t LEFT JOIN ticket_uses u ON u.ticket_id = t.id "
        "LEFT JOIN ticket_marks m ON m.ticket_id = t.id", (ticket_id,)).fetchone()
    entries, value, revoked, used_remote, value_remote = row
    return TicketUse((entries or 0) + _others(used_remote, device),
                     (value or 0) + _others(value_remote, device), bool(revoked))


def record_use(conn: sqlite3.Connection, ticket_id: str, entries: int, amount_cents: int,
               valid_to: int, now_ms: int) -> None:
    """Count one use here, inside the tap's transaction."""
    conn.execute(
        "INSERT INTO ticket_uses(ticket_id, entries_used, value_used_cents, valid_to, "
        "updated_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT(ticket_id) DO UPDATE SET "
        "entries_used = entries_used + excluded.entries_used, "
        "value_used_cents = value_used_cents + excluded.value_used_cents, "
        "updated_ms = excluded.updated_ms",
        (ticket_id, entries, amount_cents, valid_to, now_ms))


def prune_expired(conn: sqlite3.Connection, now_s: int) -> int:
    """Forget tickets that ended over a day ago (their code is refused as expired anyway,
    the day covers a clock that is behind); the rows removed."""
    cutoff = now_s - PRUNE_AFTER_S
    removed = conn.execute("DELETE FROM ticket_uses WHERE valid_to < ?", (cutoff,)).rowcount
    removed += conn.execute("DELETE FROM ticket_marks WHERE valid_to < ?", (cutoff,)).rowcount
    return int(removed)


def _merged(raw: str | None, new: dict[str, int]) -> str | None:
    """Uses per device only grow, so the larger count of each device wins: marks applied
    out of order (a snapshot staged after a newer batch) never lower a count."""
    old: dict[str, int] = json.loads(raw) if raw else {}
    merged = {d: max(old.get(d, 0), new.get(d, 0)) for d in old.keys() | new.keys()}
    return json.dumps(merged, sort_keys=True) if merged else None


def apply_mark(conn: sqlite3.Connection, mark: TicketMark) -> None:
    """The bridge's mark; a revocation is never undone by an older or later mark."""
    row = conn.execute("SELECT revoked, used_remote, value_remote, valid_to FROM "
                       "ticket_marks WHERE ticket_id = ?", (mark.id,)).fetchone()
    revoked, used, value, valid_to = row if row is not None else (0, None, None, None)
    conn.execute(
        "INSERT OR REPLACE INTO ticket_marks(ticket_id, revoked, used_remote, value_remote, "
        "valid_to) VALUES (?, ?, ?, ?, ?)",
        (mark.id, int(bool(revoked) or mark.revoked), _merged(used, mark.used_by_device),
         _merged(value, mark.value_by_device),
         mark.valid_to if mark.valid_to is not None else valid_to))
