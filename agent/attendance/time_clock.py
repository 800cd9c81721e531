"""The E-EDC time clock: a tap (card, QR) or a PIN becomes a punch in the chain.

A recognised employee first gets a *pending* punch with a suggested type; it is recorded
when the choose window runs out, when the employee presses a type on the kiosk, or when
the next person taps at that terminal. The punch keeps the moment of the tap as its time.
Every punch is an outbox event carrying the hash of the previous punch (punch_chain), in
the same transaction as the employee's last-punch state.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agent.access.local_state import load_state
from agent.access.model import SiteRules
from agent.access.service import Clock
from agent.attendance.pin_guard import PinGuard
from agent.config import TerminalConfig
from agent.credentials.read_parser import parse_read
from agent.credentials.replay_guard import is_replayed, remember
from agent.live_feed import LiveFeed
from agent.store.local_store import LocalStore
from agent.store.outbox import Outbox
from contracts.i18n import N_
from contracts.i18n import gettext as _
from contracts.punch_chain import GENESIS, HEAD_EVENT, PUNCH_EVENT, punch_hash, sign_head
from contracts.punch_types import PunchType, suggest
from contracts.reasons import Reason

log = logging.getLogger(__name__)

# a punch more than this long ago belongs to an earlier shift: start again with arrival
SHIFT_GAP = timedelta(hours=16)

_READ_PROBLEMS = {
    Reason.MALFORMED_CREDENTIAL: "malformed",
    Reason.BAD_SIGNATURE: "bad_signature",
    Reason.REPLAYED: "replayed",
    Reason.EXPIRED: "expired",
    Reason.NOT_YET_VALID: "expired",
}

# what the terminal shows for a refusal, translated where shown (the kiosk page has the
# same texts through its catalog)
REFUSAL_TEXT = {
    "unknown": N_("Unknown card"),
    "malformed": N_("Unreadable code"),
    "blocked": N_("Card blocked"),
    "bad_signature": N_("Invalid code"),
    "replayed": N_("Code already used"),
    "expired": N_("Code has expired"),
    "wrong": N_("Wrong number or PIN"),
    "locked": N_("PIN locked, try again later"),
    "terminal_locked": N_("Too many attempts, please wait"),
}
REFUSED = N_("Refused")

# the punch types as the terminal names them
PUNCH_LABELS: dict[PunchType, str] = {
    PunchType.ARRIVAL: N_("Arrival"),
    PunchType.DEPARTURE: N_("Departure"),
    PunchType.BREAK_START: N_("Start of break"),
    PunchType.BREAK_END: N_("End of break"),
    PunchType.TRIP_START: N_("Leaving on business"),
    PunchType.TRIP_END: N_("Back from business"),
    PunchType.PRIVATE_START: N_("Leaving on private matters"),
    PunchType.PRIVATE_END: N_("Back from private matters"),
}


def punch_label(punch_type: PunchType) -> str:
    return _(PUNCH_LABELS[punch_type])


@dataclass(frozen=True, slots=True)
class PunchView:
    """What a terminal shows after a tap, a PIN or a choice."""

    status: str  # pending | recorded | refused
    terminal: str
    message: str
    pending_id: str | None = None
    first_name: str | None = None
    punch_type: str | None = None
    choices: tuple[str, ...] = ()
    seq: int | None = None
    retry_after_s: int = 0
    problem: str | None = None  # a refusal's code (REFUSAL_TEXT), for pages that translate

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "punch", "status": self.status, "terminal": self.terminal,
                "message": self.message, "pending_id": self.pending_id,
                "first_name": self.first_name, "punch_type": self.punch_type,
                "choices": list(self.choices), "seq": self.seq,
                "retry_after_s": self.retry_after_s, "problem": self.problem,
                "labels": {c: punch_label(PunchType(c)) for c in self.choices}}


@dataclass(slots=True)
class _Pending:
    id: str
    terminal: str
    member_id: str
    first_name: str
    suggested: PunchType
    method: str
    tapped_at: datetime
    deadline: float  # time.monotonic()
    done: bool = field(default=False)


class TimeClock:
    def __init__(
        self,
        store: LocalStore,
        outbox: Outbox,
        feed: LiveFeed,
        terminals: list[TerminalConfig],
        hmac_key: bytes,
        public_key: Ed25519PublicKey | None,
        signing_key: Ed25519PrivateKey,
        tz: ZoneInfo,
        pin_guard: PinGuard,
        clock: Clock,
        head_every: int = 20,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.feed = feed
        self.terminals = {t.id: t for t in terminals}
        self.hmac_key = hmac_key
        self.public_key = public_key
        self.signing_key = signing_key
        self.rules = SiteRules(tz=tz)
        self.pins = pin_guard
        self.clock = clock
        self.head_every = head_every
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="time-clock", daemon=True)

    def start(self) -> None:
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join(5)
        with self._lock:
            for p in list(self._pending.values()):
                self._record(p, p.suggested)
        self.sign_head()

    # -- inputs --------------------------------------------------------------------

    def read(self, terminal: str, kind: str, value: str) -> PunchView:
        now = self.clock()
        parsed = parse_read(kind, value, self.hmac_key, self.public_key, int(now.timestamp()))
        method = "card" if kind == "uid" else "qr"
        if parsed.problem is not None:
            return self._refuse(terminal, _READ_PROBLEMS.get(parsed.problem, "malformed"), now,
                                method)
        with self.store.transaction() as conn:
            if parsed.token is not None and is_replayed(conn, parsed.token, now):
                problem = "replayed"
            else:
                state = load_state(conn, lookup_hash=parsed.lookup_hash,
                                   credential_id=parsed.token.credential_id if parsed.token
                                   else None, now=now, rules=self.rules,
                                   need_occupancy=False, device=self.outbox.device)
                if state.credential is None or state.member is None:
                    problem = "unknown"
                elif state.credential.blocked or state.member.blocked:
                    problem = "blocked"
                else:
                    problem = ""
                    if parsed.token is not None:
                        remember(conn, parsed.token)
        if problem:
            return self._refuse(terminal, problem, now, method)
        assert state.member is not None
        return self._begin(terminal, state.member.id, state.member.first_name, method, now)

    def pin(self, terminal: str, employee: str, pin: str) -> PunchView:
        now = self.clock()
        result = self.pins.check(terminal, employee, pin)
        if not result.ok:
            return self._refuse(terminal, result.problem or "wrong", now, "pin",
                                retry_after_s=result.retry_after_s)
        row = self.store.conn.execute("SELECT first_name, blocked FROM members WHERE id = ?",
                                      (result.member_id,)).fetchone()
        if row is None or row[1]:
            return self._refuse(terminal, "blocked" if row else "unknown", now, "pin")
        return self._begin(terminal, employee, row[0], "pin", now)

    def choose(self, pending_id: str, punch_type: str) -> PunchView:
        try:
            chosen = PunchType(punch_type)
        except ValueError:
            raise ValueError(f"unknown punch type '{punch_type[:30]}'") from None
        with self._lock:
            pending = self._pending.get(pending_id)
            if pending is None or pending.done:
                raise LookupError("this punch was already recorded; tap again to add another")
            return self._record(pending, chosen)

    # -- internals -------------------------------------------------------------------

    def _begin(self, terminal: str, member_id: str, first_name: str, method: str,
               now: datetime) -> PunchView:
        cfg = self.terminals[terminal]
        with self._lock:
            # the next person tapping confirms whoever was still choosing
            for p in [p for p in self._pending.values() if p.terminal == terminal]:
                self._record(p, p.suggested)
            row = self.store.conn.execute(
                "SELECT last_type, at_ms FROM punch_state WHERE member_id = ?", (member_id,)
            ).fetchone()
            last = None
            if row and now.timestamp() * 1000 - row[1] < SHIFT_GAP.total_seconds() * 1000:
                last = PunchType(row[0])
            pending = _Pending(str(uuid.uuid4()), terminal, member_id, first_name, suggest(last),
                               method, now, time.monotonic() + cfg.choose_window_s)
            self._pending[pending.id] = pending
        view = PunchView("pending", terminal, _("Hello, %(name)s") % {"name": first_name},
                         pending.id, first_name, pending.suggested.value,
                         tuple(t.value for t in PunchType))
        self.feed.publish(view.as_dict())
        return view

    def _record(self, pending: _Pending, punch_type: PunchType) -> PunchView:
        pending.done = True
        self._pending.pop(pending.id, None)
        with self.store.transaction() as conn:
            event = self._append_punch(conn, pending, punch_type)
            chain_len = int(LocalStore.get_meta_in(conn, "punch_chain_count", "0")) + 1
            LocalStore.set_meta(conn, "punch_chain_count", str(chain_len))
        if chain_len % self.head_every == 0:
            self.sign_head()
        view = PunchView("recorded", pending.terminal,
                         _("%(type)s recorded, %(name)s") % {
                             "type": punch_label(punch_type), "name": pending.first_name},
                         None, pending.first_name, punch_type.value, (), event.seq)
        self.feed.publish(view.as_dict())
        log.info("punch recorded terminal=%s type=%s seq=%d", pending.terminal,
                 punch_type.value, event.seq)
        return view

    def _append_punch(self, conn: sqlite3.Connection, pending: _Pending,
                      punch_type: PunchType) -> Any:
        prev = LocalStore.get_meta_in(conn, "punch_chain_head", GENESIS)
        head: dict[str, Any] = {}

        def seal(seq: int, ts: str, data: dict[str, Any]) -> dict[str, Any]:
            sealed = {**data, "prev_hash": prev}
            digest = punch_hash(prev, {"device": self.outbox.device, "seq": seq, "ts": ts,
                                       "type": PUNCH_EVENT, "data": sealed})
            head.update(hash=digest, seq=seq)
            return {**sealed, "hash": digest}

        event = self.outbox.append(conn, PUNCH_EVENT, {
            "employee": pending.member_id, "type": punch_type.value, "method": pending.method,
            "terminal": pending.terminal}, pending.tapped_at, seal=seal)
        LocalStore.set_meta(conn, "punch_chain_head", head["hash"])
        LocalStore.set_meta(conn, "punch_chain_seq", str(head["seq"]))
        conn.execute(
            "INSERT INTO punch_state(member_id, last_type, at_ms) VALUES (?, ?, ?) "
            "ON CONFLICT(member_id) DO UPDATE SET last_type = excluded.last_type, "
            "at_ms = excluded.at_ms",
            (pending.member_id, punch_type.value, int(pending.tapped_at.timestamp() * 1000)))
        return event

    def sign_head(self) -> None:
        """Sign the newest punch hash, unless that head is already signed."""
        with self.store.transaction() as conn:
            head = LocalStore.get_meta_in(conn, "punch_chain_head", GENESIS)
            if head == GENESIS or head == LocalStore.get_meta_in(conn, "punch_head_signed", ""):
                return
            seq = int(LocalStore.get_meta_in(conn, "punch_chain_seq", "0"))
            self.outbox.append(conn, HEAD_EVENT, {"punch_seq": seq, "hash": head,
                                                  "sig": sign_head(self.signing_key, head)},
                               self.clock())
            LocalStore.set_meta(conn, "punch_head_signed", head)

    def _refuse(self, terminal: str, problem: str, now: datetime, method: str,
                retry_after_s: int = 0) -> PunchView:
        with self.store.transaction() as conn:
            self.outbox.append(conn, "attendance.refused",
                               {"terminal": terminal, "reason": problem, "method": method}, now)
        view = PunchView("refused", terminal, _(REFUSAL_TEXT.get(problem, REFUSED)),
                         retry_after_s=retry_after_s, problem=problem)
        self.feed.publish(view.as_dict())
        return view

    def _tick(self) -> None:
        last_head = time.monotonic()
        while not self._stop.wait(0.2):
            now = time.monotonic()
            with self._lock:
                due = [p for p in self._pending.values() if p.deadline <= now]
                for p in due:
                    try:
                        self._record(p, p.suggested)
                    except Exception:  # keep ticking; the pending punch stays for a retry
                        log.exception("recording a punch failed")
                        p.done = False
                        self._pending[p.id] = p
            if now - last_head > 3600:
                last_head = now
                self.sign_head()
