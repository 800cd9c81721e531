"""What "alive" means for this agent — one definition for the systemd watchdog,
``/healthz`` and ``edge-agent doctor``.

The agent is alive when all of these hold:

- **decision path**: a self-test tap goes through the access engine against the store,
  through the same group committer and store lock real taps use, within the probe
  timeout. It looks up a random credential hash nobody holds and must come back
  ``unknown_credential``; it writes nothing (an empty transaction).
- **peripherals**: not every configured peripheral reports DOWN.
- **MQTT link**: its thread is running (when ``[mqtt]`` is configured). Being offline is
  not a failure — the agent is built to work for days without the broker.

Alarms (e.g. storage nearly full) make the agent *degraded*, not dead: a restart
would not free space, so they never stop the watchdog.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.access.engine import decide
from agent.access.local_state import load_state
from agent.access.model import GateContext
from agent.daemon_ports import (
    DecisionPath,
    HealthSubject,
    LinkStatus,
    PeripheralSet,
    peripherals_by_role,
)
from contracts.reasons import Reason
from drivers.protocols import HealthState


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class HealthReport:
    checks: tuple[Check, ...]
    alarms: tuple[str, ...] = ()
    at: float = field(default_factory=time.monotonic)
    probe_ms: float | None = None

    @property
    def alive(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def status(self) -> str:
        if not self.alive:
            return "failing"
        return "degraded" if self.alarms else "ok"

    def failures(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "alarms": list(self.alarms),
            "probe_ms": self.probe_ms,
        }


class SelfTestTap:
    """Runs the read-only self-test tap in a worker thread, one at a time, so a hung
    decision path shows as a probe that does not come back (and never piles up)."""

    def __init__(self, daemon: DecisionPath) -> None:
        self.daemon = daemon
        self._hash = os.urandom(32).hex()  # nobody holds this credential
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._result: tuple[bool, str] = (False, "not run")
        self._started_at = 0.0

    def _work(self, conn: Any) -> Reason:
        access = self.daemon.access
        now = datetime.now(UTC)
        gates = list(self.daemon.config.gates)
        gate = (GateContext(gates[0].id, gates[0].zone, "in") if gates
                else GateContext("self-test", "main", "in"))
        state = load_state(conn, lookup_hash=self._hash, credential_id=None, now=now,
                           rules=access.rules, need_occupancy=False,
                           device=self.daemon.config.device)
        return decide(gate, now, state, access.rules).reason

    def _run(self) -> None:
        try:
            reason = self.daemon.access.committer.run(self._work)
            self._result = ((True, "self-test tap answered") if reason is Reason.UNKNOWN_CREDENTIAL
                            else (False, f"self-test tap gave '{reason}', expected "
                                  "'unknown_credential'"))
        except Exception as exc:  # reported, not raised: the watchdog decides
            self._result = (False, f"self-test tap failed: {exc}")
        finally:
            self._done.set()

    def run(self, timeout_s: float) -> tuple[bool, str, float | None]:
        """(ok, detail, milliseconds) — waits at most ``timeout_s``."""
        if self._thread is not None and self._thread.is_alive():
            stuck = time.monotonic() - self._started_at
            if not self._done.wait(timeout_s):
                return False, f"decision path stuck: the self-test tap has not come back " \
                              f"for {stuck + timeout_s:.1f} s", None
        else:
            self._done.clear()
            self._started_at = time.monotonic()
            self._thread = threading.Thread(target=self._run, name="self-test-tap",
                                            daemon=True)
            self._thread.start()
            if not self._done.wait(timeout_s):
                return False, f"decision path stuck: no answer to the self-test tap within " \
                              f"{timeout_s:.1f} s", None
        ok, detail = self._result
        return ok, detail, (time.monotonic() - self._started_at) * 1000


def peripheral_check(daemon: PeripheralSet) -> Check:
    states: list[tuple[str, HealthState]] = []
    for _role, pid, peripheral in peripherals_by_role(daemon):
        try:
            states.append((pid, peripheral.health().state))
        except Exception:
            states.append((pid, HealthState.DOWN))
    if not states:
        return Check("peripherals", True, "none configured")
    down = [pid for pid, s in states if s is HealthState.DOWN]
    if len(down) == len(states):
        return Check("peripherals", False, f"all {len(states)} peripherals are down")
    detail = f"{len(states) - len(down)}/{len(states)} up"
    return Check("peripherals", True, detail + (f" (down: {', '.join(down)})" if down else ""))


def _link_alive(link: LinkStatus) -> bool:
    # the link says so itself when it can; sync's AgentLink only has its thread
    is_alive = getattr(link, "is_alive", None)
    if callable(is_alive):
        return bool(is_alive())
    thread = getattr(link, "_thread", None)
    return isinstance(thread, threading.Thread) and thread.is_alive()


def link_check(link: LinkStatus | None) -> Check:
    if link is None:
        return Check("mqtt_link", True, "not configured")
    alive = _link_alive(link)
    if not alive:
        return Check("mqtt_link", False, "the MQTT link thread has stopped")
    return Check("mqtt_link", True, "connected" if link.connected else "offline (retrying)")


class AgentHealth:
    """Evaluates every liveness check; alarms come from ``alarm_sources``."""

    def __init__(self, daemon: HealthSubject, link: LinkStatus | None = None, *,
                 alarm_sources: tuple[Callable[[], str | None], ...] = (),
                 probe_timeout_s: float = 5.0) -> None:
        self.daemon = daemon
        self.link = link
        self.alarm_sources = alarm_sources
        self.probe_timeout_s = probe_timeout_s
        self.tap = SelfTestTap(daemon)
        self.last: HealthReport | None = None

    def evaluate(self) -> HealthReport:
        ok, detail, ms = self.tap.run(self.probe_timeout_s)
        checks = (Check("decision_path", ok, detail), peripheral_check(self.daemon),
                  link_check(self.link))
        alarms = tuple(a for a in (src() for src in self.alarm_sources) if a)
        self.last = HealthReport(checks, alarms, probe_ms=None if ms is None else round(ms, 3))
        return self.last
