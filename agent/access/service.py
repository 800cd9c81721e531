"""Where a read becomes a decision and a durable fact.

One tap = one BEGIN IMMEDIATE transaction: read the local state, run the pure engine,
then consume the entry, move the presence and append the event. Either all of it is
committed or none of it (a crash in between loses neither an entry nor an event).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.access.engine import decide, decide_ticket
from agent.access.local_state import load_state, presence_expiry_cutoff
from agent.access.model import (
    Decision,
    GateContext,
    LocalState,
    Presence,
    SiteRules,
    TicketState,
    holder_id,
)
from agent.credentials.ntag424_sun import SunKeys
from agent.credentials.read_parser import ParsedCredential, parse_read
from agent.credentials.replay_guard import is_replayed, remember
from agent.credentials.sun_counters import counter_increases, forget_orphans, record_counter
from agent.store.group_commit import GroupCommitter
from agent.store.local_store import LocalStore
from agent.store.outbox import Outbox
from agent.store.tickets import record_use, ticket_use
from contracts.events import Event
from contracts.reasons import Reason
from contracts.ticket_events import TICKET_USED, TicketUsed
from contracts.ticket_token import TicketToken

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class TapOutcome:
    decision: Decision
    event: Event | None
    first_name: str | None
    # True when the same credential was presented again at the same reader within the
    # repeat window: the first decision is repeated, nothing is consumed or opened again
    repeat: bool = False
    member_id: str | None = None

    @property
    def granted(self) -> bool:
        return self.decision.granted


class AccessService:
    def __init__(
        self,
        store: LocalStore,
        outbox: Outbox,
        rules: SiteRules,
        hmac_key: bytes,
        public_key: Ed25519PublicKey | None = None,
        clock: Clock = utc_now,
        repeat_window_s: float = 1.5,
        crash_hook: Callable[[str, str], None] | None = None,
        sun_keys: SunKeys | None = None,
        site_id: str | None = None,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.rules = rules
        self.hmac_key = hmac_key
        self.public_key = public_key
        # NTAG 424 SDM keys: by default derived from the tenant's credential key, so no
        # device holds a key that verifies (or mints) another tenant's cards
        self.sun_keys = sun_keys or SunKeys.derive(hmac_key, outbox.tenant)
        self.clock = clock
        # the device's site (config.site): printed tickets bound to another are refused
        self.site_id = site_id
        self.repeat_window_s = repeat_window_s
        # test seam to simulate a power cut at a named point inside the transaction
        self._crash_hook = crash_hook
        self._recent: dict[tuple[str, str], tuple[float, TapOutcome]] = {}
        self._recent_lock = threading.Lock()
        self.committer = GroupCommitter(store)
        # a site of several gates (agent/access/presence_share.py); None: one device alone.
        # presence_listener(member, gate, direction, at_ms) runs after the commit;
        # presence_trusted_since(now) is the fallback cut-off while the site link is down
        self.presence_listener: Callable[[str, str, str, int], None] | None = None
        self.presence_trusted_since: Callable[[datetime], datetime | None] | None = None

    def tap(self, reader_id: str, kind: str, value: str, gate: GateContext,
            extra: tuple[tuple[str, str], ...] = ()) -> TapOutcome:
        """Decide one read. ``extra`` is CardRead.extra (SUN parameters of a reader)."""
        now = self.clock()
        parsed = parse_read(kind, value, self.hmac_key, self.public_key, int(now.timestamp()),
                            self.sun_keys, extra, self.site_id)
        repeat_key = (reader_id, parsed.ref or "")
        if parsed.problem is None:
            with self._recent_lock:
                hit = self._recent.get(repeat_key)
                if hit is not None and time.monotonic() - hit[0] < self.repeat_window_s:
                    prev = hit[1]
                    return TapOutcome(prev.decision, prev.event, prev.first_name, repeat=True,
                                      member_id=prev.member_id)
        if parsed.ticket is not None:
            outcome = self._decide_ticket(parsed.ticket, parsed.ref, reader_id, kind, gate, now)
        else:
            outcome = self._decide_and_record(parsed, reader_id, kind, gate, now)
        if parsed.problem is None:
            with self._recent_lock:
                self._recent[repeat_key] = (time.monotonic(), outcome)
                if len(self._recent) > 256:
                    cutoff = time.monotonic() - self.repeat_window_s
                    self._recent = {k: v for k, v in self._recent.items() if v[0] >= cutoff}
        return outcome

    def _decide_and_record(
        self,
        parsed: ParsedCredential,
        reader_id: str,
        kind: str,
        gate: GateContext,
        now: datetime,
    ) -> TapOutcome:
        def work(conn: sqlite3.Connection) -> tuple[Decision, Event, LocalState]:
            problem = parsed.problem
            state = LocalState(credential=None)
            if problem is None and parsed.token is not None and is_replayed(conn, parsed.token,
                                                                            now):
                problem = Reason.REPLAYED
            if problem is None:
                state = load_state(
                    conn,
                    lookup_hash=parsed.lookup_hash,
                    credential_id=parsed.token.credential_id if parsed.token else None,
                    now=now,
                    rules=self.rules,
                    need_occupancy=self.rules.occupancy_limit is not None
                    and gate.direction == "in",
                    device=self.outbox.device,
                    presence_trusted_since=(self.presence_trusted_since(now)
                                            if self.presence_trusted_since else None),
                )
            sun = parsed.sun
            if problem is None and sun is not None and state.credential is not None:
                if not counter_increases(conn, state.credential.id, sun.counter):
                    problem = Reason.REPLAYED  # a recorded SUN message, or a cloned one
                else:
                    record_counter(conn, state.credential.id, sun.counter, now)
            decision = decide(gate, now, state, self.rules, problem, parsed.secure)
            member_id = state.member.id if state.member else None
            if decision.granted and member_id is not None:
                self._apply_grant(conn, decision, member_id, gate, now)
                if parsed.token is not None:
                    remember(conn, parsed.token)
            if self._crash_hook:
                self._crash_hook("before_event", reader_id)
            event = self.outbox.append(
                conn,
                "access.decision",
                {
                    "reader": reader_id,
                    "gate": gate.gate_id,
                    "zone": gate.zone,
                    "direction": gate.direction,
                    "read_kind": kind,
                    "granted": decision.granted,
                    "reason": decision.reason.value,
                    "credential": state.credential.id if state.credential else None,
                    "credential_ref": parsed.ref,
                    "member": member_id,
                    "entitlement": decision.entitlement_id,
                    "consumed": decision.consume,
                    "entries_left": decision.entries_left,
                },
                now,
            )
            if self._crash_hook:
                self._crash_hook("before_commit", reader_id)
            return decision, event, state

        decision, event, state = self.committer.run(work)
        if decision.granted and state.member is not None:
            self._tell_site(state.member.id, gate.gate_id, gate.direction, now)
        log.info(
            "decision gate=%s reason=%s seq=%d", gate.gate_id, decision.reason.value, event.seq
        )
        return TapOutcome(
            decision,
            event,
            state.member.first_name if state.member else None,
            member_id=state.member.id if state.member else None,
        )

    def _decide_ticket(self, token: TicketToken, ref: str | None, reader_id: str, kind: str,
                       gate: GateContext, now: datetime) -> TapOutcome:
        """A verified printed ticket: decision, its use and both events in one transaction
        (docs/vouchers.md). Anti-passback and occupancy treat the ticket as the holder."""
        holder = holder_id(token.ticket_id)

        def work(conn: sqlite3.Connection) -> tuple[Decision, Event]:
            state = self._ticket_state(conn, token, gate, now)
            decision = decide_ticket(gate, now, state, self.rules)
            if decision.granted:
                self._move_presence(conn, holder, gate, now)
            if decision.granted and decision.consume:
                entries = 0 if decision.amount_cents else 1
                record_use(conn, token.ticket_id, entries, decision.amount_cents,
                           token.valid_to, int(now.timestamp() * 1000))
                used = TicketUsed(
                    ticket_id=token.ticket_id, where="gate", entries=entries,
                    amount_cents=decision.amount_cents,
                    entries_left=max(token.entries - state.entries_used - entries, 0),
                    value_left_cents=max(token.value_cents - state.value_used_cents
                                         - decision.amount_cents, 0))
                self.outbox.append(conn, TICKET_USED, used.to_data(), now)
            event = self.outbox.append(conn, "access.decision", {
                "reader": reader_id, "gate": gate.gate_id, "zone": gate.zone,
                "direction": gate.direction, "read_kind": kind,
                "granted": decision.granted, "reason": decision.reason.value,
                "credential": None, "credential_ref": ref, "member": None,
                "entitlement": None, "consumed": decision.consume,
                "entries_left": decision.entries_left, "ticket": token.ticket_id,
                "ticket_kind": int(token.kind), "amount_cents": decision.amount_cents,
            }, now)
            return decision, event

        decision, event = self.committer.run(work)
        if decision.granted:
            self._tell_site(holder, gate.gate_id, gate.direction, now)
        log.info("decision gate=%s reason=%s seq=%d ticket", gate.gate_id,
                 decision.reason.value, event.seq)
        return TapOutcome(decision, event, None, member_id=holder)

    def _ticket_state(self, conn: sqlite3.Connection, token: TicketToken, gate: GateContext,
                      now: datetime) -> TicketState:
        use = ticket_use(conn, token.ticket_id, self.outbox.device)
        prow = conn.execute("SELECT direction, at_ms FROM presence WHERE member_id = ?",
                            (holder_id(token.ticket_id),)).fetchone()
        presence = None if prow is None else Presence(
            prow[0], datetime.fromtimestamp(prow[1] / 1000, UTC))
        trusted = self.presence_trusted_since(now) if self.presence_trusted_since else None
        if presence is not None and trusted is not None and presence.at < trusted:
            presence = None
        occupancy = 0
        if self.rules.occupancy_limit is not None and gate.direction == "in":
            occupancy = int(conn.execute(
                "SELECT COUNT(*) FROM presence WHERE direction = 'in' AND at_ms > ?",
                (presence_expiry_cutoff(now, self.rules.presence_expiry),)).fetchone()[0])
        return TicketState(token, use.entries_used, use.value_used_cents, use.revoked,
                           presence, occupancy)

    def _move_presence(self, conn: sqlite3.Connection, holder: str, gate: GateContext,
                       now: datetime) -> None:
        conn.execute(
            "INSERT INTO presence(member_id, direction, at_ms, gate) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(member_id) DO UPDATE SET direction = excluded.direction, "
            "at_ms = excluded.at_ms, gate = excluded.gate",
            (holder, gate.direction, int(now.timestamp() * 1000), gate.gate_id),
        )

    def _apply_grant(
        self,
        conn: sqlite3.Connection,
        decision: Decision,
        member_id: str,
        gate: GateContext,
        now: datetime,
    ) -> None:
        if decision.consume and decision.entitlement_id:
            conn.execute(
                "INSERT INTO entry_counters(entitlement_id, used) VALUES (?, 1) "
                "ON CONFLICT(entitlement_id) DO UPDATE SET used = used + 1",
                (decision.entitlement_id,),
            )
        self._move_presence(conn, member_id, gate, now)

    def forget_recent(self) -> None:
        """Membership data changed: a repeat must not echo a decision made on old data,
        and nothing of an erased credential (its SUN counter) may stay behind."""
        with self._recent_lock:
            self._recent.clear()
        with self.store.transaction() as conn:
            forget_orphans(conn)

    def passage_missed(self, member_id: str, entitlement_id: str | None, consumed: bool,
                       gate_id: str, decision_seq: int) -> Event:
        """Nobody walked through after a grant: give the entry back and say so."""
        now = self.clock()
        with self.store.transaction() as conn:
            if consumed and entitlement_id:
                conn.execute(
                    "UPDATE entry_counters SET used = used - 1 "
                    "WHERE entitlement_id = ? AND used > 0",
                    (entitlement_id,),
                )
            conn.execute("DELETE FROM presence WHERE member_id = ? AND gate = ?",
                         (member_id, gate_id))
            event = self.outbox.append(
                conn,
                "access.passage_missed",
                {"gate": gate_id, "member": member_id, "entitlement": entitlement_id,
                 "refunded": consumed, "decision_seq": decision_seq},
                now,
            )
        self._tell_site(member_id, gate_id, "gone", now)
        return event

    def _tell_site(self, member_id: str, gate_id: str, direction: str, now: datetime) -> None:
        """After the commit: the site's other gates learn of the passage. A failure here
        must not turn a committed decision into an error (the republish on the next
        connect carries it)."""
        if self.presence_listener is None:
            return
        try:
            self.presence_listener(member_id, gate_id, direction, int(now.timestamp() * 1000))
        except Exception:
            log.exception("telling the site's other gates failed")

    def prune_tokens(self) -> None:
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM used_tokens WHERE expires_ms < ?",
                         (int(time.time() * 1000),))
