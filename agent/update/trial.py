"""The update side of a running agent: takes release offers from the link, starts the
guard, confirms its own health while on trial after a switch, and reports each outcome
once (an event in the outbox, and the ``update`` field of the retained state)."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Literal, Protocol

from agent.health import HealthReport
from agent.update.guard import pid_alive, refusal
from agent.update.layout import Journal, UpdateLayout, write_atomic
from agent.update.service import ServiceControl, ServiceError
from contracts.errors import BadInput
from contracts.release_manifest import parse_offer

log = logging.getLogger(__name__)


class OutcomeSink(Protocol):
    def record_update(self, data: dict[str, Any]) -> None:
        """Put ``device.update`` with ``data`` into the outbox."""
        ...


GuardVerb = Literal["apply", "resume"]


class GuardLauncher(Protocol):
    def launch(self, verb: GuardVerb) -> int:
        """Start the guard (``apply`` the offer in offer.json, or ``resume``); its pid."""
        ...


class DetachedGuard:
    """A device's guard: ``python -m agent.update``, started by the service back-end so
    that the agent's restart does not take it down (agent/update/service.py)."""

    def __init__(self, service: ServiceControl, config_path: Path) -> None:
        self.service = service
        self.config_path = config_path

    def launch(self, verb: GuardVerb) -> int:
        return self.service.launch_guard(verb, self.config_path)


class UpdateMonitor:
    def __init__(self, layout: UpdateLayout, running_version: str, launcher: GuardLauncher,
                 sink: OutcomeSink) -> None:
        self.layout = layout
        self.version = running_version
        self.launcher = launcher
        self.sink = sink
        self.last_offer = ""
        # the journal's other writer is the guard, which only this monitor starts: under
        # this lock, an outcome is marked reported before a new attempt can begin
        self._lock = threading.RLock()
        self._resumed = False

    # -- at start ---------------------------------------------------------------------

    def report_outcome(self) -> None:
        """Once per attempt: its outcome into the outbox, marked as reported."""
        with self._lock:
            journal = self.layout.read_journal()
            if journal is None or not journal.terminal or journal.reported:
                return
            self.sink.record_update({"outcome": journal.state, "from": journal.from_version,
                                     "to": journal.to_version, "channel": journal.channel,
                                     "running": self.version, "reason": journal.reason[:500]})
            self.layout.write_journal(journal.moved(journal.state, reported=True))
        log.info("update outcome reported: %s %s -> %s", journal.state, journal.from_version,
                 journal.to_version)

    def state(self) -> dict[str, Any] | None:
        journal = self.layout.read_journal()
        if journal is None:
            return None
        return {"state": journal.state, "to": journal.to_version, "from": journal.from_version,
                "channel": journal.channel, "reason": journal.reason[:300]}

    # -- offers -------------------------------------------------------------------------

    def offer(self, payload: bytes) -> str:
        """Act on a release offer from the link; returns what was done (for the log)."""
        if not payload:
            return "offer withdrawn"
        with self._lock:
            try:
                offer = parse_offer(payload)
            except BadInput as exc:
                log.warning("%s", exc)
                return str(exc)
            self.report_outcome()  # the last attempt's, before a new one may begin
            why_not = refusal(offer, self.version, self.layout.read_journal())
            if why_not is not None:
                if why_not != self.last_offer:
                    log.info("release offer %s not taken: %s", offer.version, why_not)
                self.last_offer = why_not
                return why_not
            self.layout.ensure()
            write_atomic(self.layout.offer_path, payload)
            try:
                pid = self.launcher.launch("apply")
            except ServiceError as exc:
                # reported like any failed attempt, and not retried until offered again
                self.layout.write_journal(Journal(
                    "failed", offer.version, self.version, offer.channel,
                    reason=f"the update guard did not start: {exc}"))
                self.report_outcome()
                log.error("release %s offered: the update guard did not start: %s",
                          offer.version, exc)
                return f"guard not started: {exc}"
            log.info("release %s %s offered: update guard started (pid %d)", offer.channel,
                     offer.version, pid)
            self.last_offer = f"guard {pid}"
            return f"updating to {offer.version}"

    # -- trial ----------------------------------------------------------------------------

    def on_health(self, report: HealthReport, ready: bool) -> None:
        """From the health loop: confirm this version while it is on trial, start the
        guard again when the one of an unfinished attempt has died, and report an
        outcome the guard wrote after this agent started."""
        journal = self.layout.read_journal()
        if journal is None:
            return
        if journal.terminal:
            if not journal.reported:
                self.report_outcome()
            return
        if not pid_alive(journal.guard_pid) and not self._resumed:
            self._resumed = True
            try:
                pid = self.launcher.launch("resume")
            except ServiceError as exc:  # the next agent start tries again
                log.error("the update guard of %s died and could not be resumed: %s",
                          journal.to_version, exc)
                return
            log.warning("the update guard of %s died; resumed it (pid %d)",
                        journal.to_version, pid)
        if journal.state == "switched" and journal.to_version == self.version and ready:
            self._confirm(journal, report)

    def _confirm(self, journal: Journal, report: HealthReport) -> None:
        write_atomic(self.layout.confirm_path(self.version), json.dumps({
            "version": self.version, "pid": os.getpid(), "alive": report.alive,
            "failures": report.failures(), "at_ms": int(time.time() * 1000)}).encode())
