"""Remembers signed QR tokens already used at this site, for as long as they could
still verify, so a screenshot passed to a friend is refused."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from contracts.qr_token import STEP_S, TOKEN_SKEW_STEPS, QrToken


def is_replayed(conn: sqlite3.Connection, token: QrToken, now: datetime) -> bool:
    row = conn.execute("SELECT expires_ms FROM used_tokens WHERE token_hash = ?",
                       (token.digest,)).fetchone()
    return row is not None and row[0] > now.timestamp() * 1000


def remember(conn: sqlite3.Connection, token: QrToken) -> None:
    # kept as long as the token could still verify: its step plus the allowed skew
    expires_ms = (token.step + 1 + TOKEN_SKEW_STEPS) * STEP_S * 1000
    conn.execute("INSERT OR REPLACE INTO used_tokens(token_hash, expires_ms) VALUES (?, ?)",
                 (token.digest, expires_ms))
