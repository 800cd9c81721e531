"""Limits on new applications, shared by the public JSON API and the public form: at most
``per_client`` applications from one client address to one school, and ``per_school``
to one school from all addresses together, within a sliding window (one hour).

The counts live in the database (``ds_apply_counts``), as the staff sign-in's failures
(``cloud_bridge/web/auth.py``), so they hold across bridge processes. The client is a
keyed hash (HMAC-SHA256) of the school and the address, never the address: the key is
derived from the bridge's member-link key (``for_server_key``), so every process of the
bridge hashes an address alike while nothing in the table can be turned back into an
address or matched across schools. Only applications that were stored count (a refused
or invalid one does not), and the check, the count and the application are one
transaction: on PostgreSQL it locks the school's ``ds_school`` row, on SQLite it is
``BEGIN IMMEDIATE``, so parallel posts cannot slip past the limit. A school's rows older
than the window are deleted when its next application comes in.

A school's own web site that posts every candidate's application from its server is one
client: it gets ``per_client`` an hour too (raise ``per_client`` for such a bridge)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Connection, delete, func, insert, select

from cloud_bridge.driving_school.schema import apply_counts, school_profile
from cloud_bridge.errors import BridgeError

PER_CLIENT = 5  # applications from one address to one school per window
PER_SCHOOL = 200  # applications to one school from all addresses per window
WINDOW_MS = 3600_000  # one hour, sliding


def _now_ms() -> int:
    return int(time.time() * 1000)


class TooManyApplications(BridgeError):
    """Over a limit; ``retry_after_s`` is when the oldest counted application leaves the
    window."""

    status = 429

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("too many applications; try again later")
        self.retry_after_s = retry_after_s

    @property
    def minutes(self) -> int:
        return max(1, -(-self.retry_after_s // 60))


@dataclass(frozen=True, slots=True)
class ApplyLimits:
    client_key: bytes = field(repr=False)
    per_client: int = PER_CLIENT
    per_school: int = PER_SCHOOL
    window_ms: int = WINDOW_MS
    clock_ms: Callable[[], int] = _now_ms

    @classmethod
    def for_server_key(cls, server_key: bytes | None, *, per_client: int = PER_CLIENT,
                       per_school: int = PER_SCHOOL, window_ms: int = WINDOW_MS,
                       clock_ms: Callable[[], int] = _now_ms) -> ApplyLimits:
        """Limits keyed by a key of their own derived from a server secret (the bridge's
        member-link key), so the secret itself serves one purpose only. Without a server
        key (``None``: tests, a single process) the key is random for this process."""
        if server_key is None:
            key = secrets.token_bytes(32)
        else:
            key = hmac.new(server_key, b"driving-school apply limits",
                           hashlib.sha256).digest()
        return cls(key, per_client, per_school, window_ms, clock_ms)

    def client_id(self, tenant: str, address: str) -> str:
        msg = f"{tenant}\0{address}".encode()
        return hmac.new(self.client_key, msg, hashlib.sha256).hexdigest()


def _over(conn: Connection, where: list[ColumnElement[bool]], since: int, limit: int,
          window_ms: int, now: int) -> int:
    """0 when under ``limit``, else the seconds until one more is allowed: when the
    counted application that must leave the window for that does."""
    recent = [*where, apply_counts.c.at_ms > since]
    count = int(conn.execute(select(func.count()).where(*recent)).scalar_one())
    if count < limit:
        return 0
    freeing = int(conn.execute(select(apply_counts.c.at_ms).where(*recent).order_by(
        apply_counts.c.at_ms).offset(count - limit).limit(1)).scalar_one())
    return max(1, -(-(freeing + window_ms - now) // 1000))


def admit(conn: Connection, limits: ApplyLimits, tenant: str, address: str) -> None:
    """Counts one application from ``address`` to ``tenant`` inside the caller's write
    transaction, or raises ``TooManyApplications`` (then nothing is counted)."""
    now = limits.clock_ms()
    since = now - limits.window_ms
    # serialises one school's applications on PostgreSQL (SQLite: BEGIN IMMEDIATE does)
    conn.execute(select(school_profile.c.tenant).where(
        school_profile.c.tenant == tenant).with_for_update())
    # this school's old rows only: under its lock, so two schools' posts never wait on
    # each other's deletes (a school that gets no more posts keeps < per_school rows)
    conn.execute(delete(apply_counts).where(apply_counts.c.tenant == tenant,
                                            apply_counts.c.at_ms <= since))
    client = limits.client_id(tenant, address)
    for where, limit in (([apply_counts.c.tenant == tenant,
                           apply_counts.c.client == client], limits.per_client),
                         ([apply_counts.c.tenant == tenant], limits.per_school)):
        retry = _over(conn, where, since, limit, limits.window_ms, now)
        if retry:
            raise TooManyApplications(retry)
    conn.execute(insert(apply_counts).values(tenant=tenant, client=client, at_ms=now))
