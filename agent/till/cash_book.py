"""Cash in the drawer and the day's closing (Z report) of the till.

A closing covers the receipts of this device by number: every receipt after the last
number the previous closing covered, up to the last number issued when it is made, read
in the same SQLite transaction that records the closing. Receipt numbers are gapless
and issued in that store, so a receipt issued while FURS or the broker was away is in
exactly one closing whatever its fiscal state (the report counts those still owed to
FURS) and no receipt is counted twice. Cash moves (opening float, cash in, cash out) are
stamped with the closing that counted them.

The tables are created here with IF NOT EXISTS rather than by a store migration: the till
is optional and its tables live and die with it (agent/store/schema.py is shared by
every feature)."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

_TABLES = (
    "CREATE TABLE IF NOT EXISTS till_cash_moves (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "kind TEXT NOT NULL CHECK (kind IN ('float', 'in', 'out')), amount_cents INTEGER NOT "
    "NULL CHECK (amount_cents > 0), cashier TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', "
    "at_ms INTEGER NOT NULL, closing_id INTEGER)",
    "CREATE TABLE IF NOT EXISTS till_closings (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "premise TEXT NOT NULL, device TEXT NOT NULL, from_number INTEGER NOT NULL, "
    "to_number INTEGER NOT NULL, closed_ms INTEGER NOT NULL, cashier TEXT NOT NULL, "
    "report TEXT NOT NULL)",
)


def ensure_tables(conn: sqlite3.Connection) -> None:
    for sql in _TABLES:
        conn.execute(sql)


def add_move(conn: sqlite3.Connection, kind: str, amount_cents: int, cashier: str,
             note: str, at_ms: int) -> None:
    conn.execute("INSERT INTO till_cash_moves(kind, amount_cents, cashier, note, at_ms) "
                 "VALUES (?, ?, ?, ?, ?)", (kind, amount_cents, cashier, note, at_ms))


@dataclass(frozen=True, slots=True)
class Closing:
    id: int
    from_number: int
    to_number: int
    report: dict[str, Any]


def _last_closed(conn: sqlite3.Connection, premise: str, device: str) -> int:
    row = conn.execute("SELECT MAX(to_number) FROM till_closings WHERE premise = ? AND "
                       "device = ?", (premise, device)).fetchone()
    return int(row[0] or 0)


def _add(into: dict[str, int], key: str, cents: int) -> None:
    into[key] = into.get(key, 0) + cents


def _receipts_part(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    cashiers: dict[str, dict[str, int]] = defaultdict(lambda: {"receipts": 0, "total_cents": 0})
    methods: dict[str, int] = {}
    rates: dict[str, dict[str, int]] = defaultdict(lambda: {"base_cents": 0, "vat_cents": 0})
    exempt = nontaxable = refunds = refunds_cents = owed = 0
    cash_net = 0
    for _number, fiscal_state, text in rows:
        data = json.loads(text)
        totals = data["totals"]
        who = cashiers[data["operator"]["name"]]
        who["receipts"] += 1
        who["total_cents"] += totals["total_cents"]
        for pay in data["payments"]:
            _add(methods, pay["method"], pay["amount_cents"])
        _add(methods, "cash", -totals["change_cents"])  # change goes back out in cash
        cash_net += sum(p["amount_cents"] for p in data["payments"] if p["method"] == "cash")
        cash_net -= totals["change_cents"]
        for r in totals["rates"]:
            rates[r["vat"]]["base_cents"] += r["base_cents"]
            rates[r["vat"]]["vat_cents"] += r["vat_cents"]
        exempt += totals["exempt_cents"]
        nontaxable += totals.get("nontaxable_cents", 0)
        if data.get("reference"):
            refunds += 1
            refunds_cents += totals["total_cents"]
        owed += fiscal_state in ("pending", "pending_subsequent", "failed_rejected")
    total = sum(c["total_cents"] for c in cashiers.values())
    return {"receipts": len(rows), "total_cents": total, "cashiers": dict(cashiers),
            "methods": methods,
            "rates": dict(rates), "exempt_cents": exempt, "nontaxable_cents": nontaxable,
            "refunds": refunds,
            "refunds_cents": refunds_cents, "not_fiscalised": owed, "cash_net_cents": cash_net}


def close_day(conn: sqlite3.Connection, premise: str, device: str, cashier: str,
              now_ms: int) -> Closing:
    """Record the closing of everything since the last one (inside the caller's
    transaction, which also writes the outbox event)."""
    start = _last_closed(conn, premise, device)
    row = conn.execute("SELECT last_number FROM pos_counters WHERE premise = ? AND device = ?",
                       (premise, device)).fetchone()
    end = int(row[0]) if row else 0
    rows = conn.execute("SELECT number, fiscal_state, data FROM pos_receipts WHERE premise = ? "
                        "AND device = ? AND number > ? AND number <= ? ORDER BY number",
                        (premise, device, start, end)).fetchall()
    report = _receipts_part(rows)
    moves = dict.fromkeys(("float", "in", "out"), 0)
    for kind, cents in conn.execute("SELECT kind, SUM(amount_cents) FROM till_cash_moves "
                                    "WHERE closing_id IS NULL GROUP BY kind").fetchall():
        moves[str(kind)] = int(cents)
    report.update({"from_number": start + 1, "to_number": end, "float_cents": moves["float"],
                   "cash_in_cents": moves["in"], "cash_out_cents": moves["out"],
                   "expected_cash_cents": moves["float"] + moves["in"] - moves["out"]
                   + report["cash_net_cents"], "closed_by": cashier})
    cur = conn.execute("INSERT INTO till_closings(premise, device, from_number, to_number, "
                       "closed_ms, cashier, report) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                       (premise, device, start + 1, end, now_ms, cashier,
                        json.dumps(report, ensure_ascii=False)))
    closing_id = int(cur.fetchone()[0])
    conn.execute("UPDATE till_cash_moves SET closing_id = ? WHERE closing_id IS NULL",
                 (closing_id,))
    report["closing_id"] = closing_id
    return Closing(closing_id, start + 1, end, report)
