"""Cashier sign-in on the till: number + PIN (scrypt, contracts/pin_hash.py) gives a
session token held in memory; the session carries the cashier's permissions and the
tax number that goes to FURS as OperatorTaxNumber (never to the page, paper or events)."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from contracts.pin_hash import check_pin
from contracts.pos_config import TillCashierConfig

_MAX_FAILURES = 5  # per cashier, then locked for _LOCK_S
_LOCK_S = 60.0


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    cashier: TillCashierConfig
    expires: float

    def public(self) -> dict[str, object]:
        c = self.cashier
        return {"token": self.token, "name": c.name, "may_discount": c.may_discount,
                "may_refund": c.may_refund, "may_open_drawer": c.may_open_drawer}


class SignInRefused(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem  # wrong | locked


class Cashiers:
    def __init__(self, cashiers: list[TillCashierConfig], session_minutes: int) -> None:
        self._by_id = {c.id: c for c in cashiers}
        self._ttl = session_minutes * 60.0
        self._sessions: dict[str, Session] = {}
        self._failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def sign_in(self, cashier_id: str, pin: str) -> Session:
        now = time.monotonic()
        with self._lock:
            count, since = self._failures.get(cashier_id, (0, now))
            if count >= _MAX_FAILURES and now - since < _LOCK_S:
                raise SignInRefused("locked")
        cashier = self._by_id.get(cashier_id)
        if cashier is None or not check_pin(pin, cashier.pin_hash.get_secret_value()):
            with self._lock:
                count, since = self._failures.get(cashier_id, (0, now))
                if now - since >= _LOCK_S:
                    count, since = 0, now
                self._failures[cashier_id] = (count + 1, since)
            raise SignInRefused("wrong")
        session = Session(secrets.token_urlsafe(24), cashier, now + self._ttl)
        with self._lock:
            self._failures.pop(cashier_id, None)
            self._sessions[session.token] = session
        return session

    def all(self) -> list[TillCashierConfig]:
        return list(self._by_id.values())

    def sign_in_card(self, cashier: TillCashierConfig) -> Session:
        """A session for a cashier whose card was read at the till's reader."""
        session = Session(secrets.token_urlsafe(24), cashier, time.monotonic() + self._ttl)
        with self._lock:
            self._sessions[session.token] = session
        return session

    def session(self, token: str) -> Session | None:
        with self._lock:
            found = self._sessions.get(token)
            if found is not None and found.expires < time.monotonic():
                del self._sessions[token]
                return None
            return found

    def sign_out(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)
