"""Staff login, sessions, CSRF and login throttling for the bridge's web modules.

Sessions live in the database (not in a process), so any bridge process can serve any
request and one can die without logging anybody out. Passwords are Argon2id
(argon2-cffi). Throttling counts failures per account and per client address over a
sliding window, also in the database, so it holds across processes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import HTTPException, Request
from sqlalchemy import Engine, and_, delete, func, insert, select, update

from cloud_bridge.db_schema import write_tx
from cloud_bridge.web.auth_schema import login_attempts, sessions, users
from cloud_bridge.web.roles import Role, allowed

COOKIE = "es_session"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _now_ms() -> int:
    return int(time.time() * 1000)


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Staff:
    user_id: int
    tenant: str
    username: str
    role: str
    csrf: str


class LoginRefused(Exception):
    def __init__(self, message: str, retry_after_s: int = 0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class WebAuth:
    def __init__(
        self,
        engine: Engine,
        *,
        secure_cookies: bool = True,
        session_hours: float = 12,
        max_user_failures: int = 5,
        max_client_failures: int = 20,
        window_minutes: int = 15,
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self.engine = engine
        self.secure_cookies = secure_cookies
        self.session_ms = int(session_hours * 3600_000)
        self.max_user_failures = max_user_failures
        self.max_client_failures = max_client_failures
        self.window_ms = window_minutes * 60_000
        self.clock_ms = clock_ms
        self.hasher = PasswordHasher()
        # verifying against this keeps "no such user" as slow as "wrong password"
        self._dummy_hash = self.hasher.hash(secrets.token_hex(8))

    # -- users -------------------------------------------------------------------

    def create_user(self, tenant: str, username: str, password: str, role: str) -> int:
        Role(role)  # raises ValueError for an unknown role
        if len(password) < 10:
            raise ValueError("a password needs at least 10 characters")
        with self.engine.begin() as conn:
            result = conn.execute(insert(users).values(
                tenant=tenant, username=username.strip().lower(),
                password_hash=self.hasher.hash(password), role=role, active=True,
                created_ms=self.clock_ms()))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    # -- login ---------------------------------------------------------------------

    def _failures(self, conn, column, value: str, since: int) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        row = conn.execute(
            select(func.count(), func.min(login_attempts.c.at_ms)).where(and_(
                column == value, login_attempts.c.ok.is_(False),
                login_attempts.c.at_ms > since))).one()
        return int(row[0]), int(row[1] or 0)

    def login(self, username: str, password: str, client: str) -> tuple[str, Staff]:
        username = username.strip().lower()[:120]
        client = client[:64]
        now = self.clock_ms()
        since = now - self.window_ms
        # a write transaction from the start: it reads the counts, then writes the attempt
        # (deferred, another login's commit in between fails it on SQLite)
        with write_tx(self.engine) as conn:
            for column, value, limit in (
                (login_attempts.c.username, username, self.max_user_failures),
                (login_attempts.c.client, client, self.max_client_failures),
            ):
                count, oldest = self._failures(conn, column, value, since)
                if count >= limit:
                    retry = max(1, (oldest + self.window_ms - now) // 1000)
                    raise LoginRefused("too many failed logins; try again later", int(retry))
            row = conn.execute(select(users).where(users.c.username == username)).first()
            ok = False
            try:
                ok = self.hasher.verify(row.password_hash if row else self._dummy_hash,
                                        password) and row is not None and bool(row.active)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                ok = False
            conn.execute(insert(login_attempts).values(username=username, client=client,
                                                       at_ms=now, ok=ok))
        if not ok or row is None:
            # raised after the commit: the failed attempt must count
            raise LoginRefused("wrong username or password")
        with self.engine.begin() as conn:
            if self.hasher.check_needs_rehash(row.password_hash):
                conn.execute(update(users).where(users.c.id == row.id).values(
                    password_hash=self.hasher.hash(password)))
            cookie = secrets.token_urlsafe(32)
            staff = Staff(row.id, row.tenant, row.username, row.role, secrets.token_hex(32))
            conn.execute(insert(sessions).values(
                id_hash=_digest(cookie), user_id=row.id, tenant=row.tenant, csrf=staff.csrf,
                expires_ms=now + self.session_ms))
            conn.execute(delete(sessions).where(sessions.c.expires_ms < now))
            conn.execute(delete(login_attempts).where(login_attempts.c.at_ms < since))
        return cookie, staff

    def session(self, cookie: str | None) -> Staff | None:
        if not cookie or len(cookie) > 100:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(sessions.c.user_id, sessions.c.tenant, sessions.c.csrf,
                       users.c.username, users.c.role, users.c.active)
                .join(users, users.c.id == sessions.c.user_id)
                .where(sessions.c.id_hash == _digest(cookie),
                       sessions.c.expires_ms > self.clock_ms())).first()
        if row is None or not row.active:
            return None
        return Staff(row.user_id, row.tenant, row.username, row.role, row.csrf)

    def logout(self, cookie: str | None) -> None:
        if cookie:
            with self.engine.begin() as conn:
                conn.execute(delete(sessions).where(sessions.c.id_hash == _digest(cookie)))

    # -- request guards --------------------------------------------------------------

    async def guard(self, request: Request, permission: str, tenant: str) -> Staff:
        """The staff member behind this request, if they may use ``permission`` on
        ``tenant``; pages redirect to the login, API calls get 401/403/404."""
        staff = self.session(request.cookies.get(COOKIE))
        is_page = "text/html" in request.headers.get("accept", "")
        if staff is None:
            if is_page and request.method == "GET":
                raise HTTPException(303, headers={"Location": "/login"})
            raise HTTPException(401, "log in first")
        if staff.tenant != tenant:
            # not 403: another tenant's names must not be confirmed to exist
            raise HTTPException(404, "not found")
        if not allowed(staff.role, permission):
            raise HTTPException(403, f"your role ({staff.role}) may not do this")
        if request.method in UNSAFE_METHODS:
            await self.check_csrf(request, staff)
        return staff

    async def check_csrf(self, request: Request, staff: Staff) -> None:
        token = request.headers.get("x-csrf-token")
        if token is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf_token")
            token = value if isinstance(value, str) else None
        if not token or not hmac.compare_digest(token, staff.csrf):
            raise HTTPException(403, "missing or wrong CSRF token; reload the page")
