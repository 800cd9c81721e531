"""The last NTAG 424 SUN read counter seen per credential (table ``sun_counters``).

A genuine card increments SDMReadCtr on every read, so a message whose counter is not
higher than the last one accepted here is a recording (or a second copy of a card's
keys). Rows are keyed by credential id, never by UID, and disappear with the credential.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime


def counter_increases(conn: sqlite3.Connection, credential_id: str, counter: int) -> bool:
    row = conn.execute("SELECT counter FROM sun_counters WHERE credential_id = ?",
                       (credential_id,)).fetchone()
    return row is None or counter > int(row[0])


def record_counter(conn: sqlite3.Connection, credential_id: str, counter: int,
                   now: datetime) -> None:
    conn.execute(
        "INSERT INTO sun_counters(credential_id, counter, at_ms) VALUES (?, ?, ?) "
        "ON CONFLICT(credential_id) DO UPDATE SET counter = excluded.counter, "
        "at_ms = excluded.at_ms WHERE excluded.counter > sun_counters.counter",
        (credential_id, counter, int(now.timestamp() * 1000)),
    )


def forget_orphans(conn: sqlite3.Connection) -> int:
    """Drop counters of credentials that are gone (erased members, replaced snapshots)."""
    cur = conn.execute("DELETE FROM sun_counters WHERE credential_id NOT IN "
                       "(SELECT id FROM credentials)")
    return cur.rowcount
