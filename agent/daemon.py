"""The agent daemon: opens the peripherals named in the config, routes each read to its
gate, decides, pulses, shows the message and records the event.

A broken config or a back-end that cannot load stops start-up before anything runs:
there is never a half-working daemon at a gate.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.access.model import GateContext
from agent.access.service import Clock, TapOutcome, utc_now
from agent.attendance.time_clock import PunchView, TimeClock
from agent.config import AgentConfig, GateConfig, ReaderConfig
from agent.daemon_parts import (
    Peripherals,
    access_service_for,
    local_http_for,
    open_peripherals,
    open_store,
    pos_runtime_for,
    print_queue_for,
    site_rules,
    time_clock_for,
)
from agent.daemon_ports import peripherals_by_role
from agent.errors import BadInput, ConfigError
from agent.live_feed import LiveFeed
from contracts.events import READER_OFFLINE, READER_REFUSED, READER_TAMPER
from contracts.i18n import set_process_language
from drivers.errors import DriverError
from drivers.protocols import (
    CardRead,
    CardReader,
    Display,
    DisplayMessage,
    DisplayStyle,
    FireAlarmInput,
    Gate,
    GatePulse,
    HoldableGate,
    Printer,
    ReaderAlert,
    ReaderCondition,
    ReaderFeedback,
    ReportsReaderAlerts,
)

if TYPE_CHECKING:  # FastAPI/uvicorn and the POS stack load only when a config uses them
    from agent.access.presence_share import SitePresence
    from agent.local_http import LocalHttpServer
    from agent.pos.pos_runtime import PosRuntime
    from agent.print_queue import PrintQueue
    from agent.till.reads import TillReadView
    from agent.update.trial import UpdateMonitor

log = logging.getLogger(__name__)

_ALERT_EVENTS = {ReaderCondition.OFFLINE: READER_OFFLINE, ReaderCondition.TAMPER: READER_TAMPER,
                 ReaderCondition.REFUSED: READER_REFUSED}


@dataclass(frozen=True, slots=True)
class _Grant:
    member_id: str
    entitlement_id: str | None
    consumed: bool
    seq: int


class AgentDaemon:
    def __init__(self, config: AgentConfig, clock: Clock = utc_now) -> None:
        self.config = config
        # displays, the kiosk page's default and printouts speak the device's language
        set_process_language(config.language)
        self.feed = LiveFeed()
        self.store, self.outbox = open_store(config.store_path, config.durability,
                                             config.tenant, config.device)
        self.access = access_service_for(config, self.store, self.outbox, clock)
        # [site_link]: presence shared with the site's other gates (docs/multi_gate.md)
        self.site_presence: SitePresence | None = None
        if config.site_link is not None:
            # imported here: a device without [site_link] does not load paho for it
            from agent.access.presence_share import site_presence_for

            self.site_presence = site_presence_for(config, self.store, self.access, clock)
        self.readers: dict[str, CardReader] = {}
        self.gates: dict[str, Gate] = {}
        self.displays: dict[str, Display] = {}
        self.printers: dict[str, Printer] = {}
        self._reader_cfg: dict[str, ReaderConfig] = {r.id: r for r in config.readers}
        self._gate_cfg: dict[str, GateConfig] = {g.id: g for g in config.gates}
        # grants waiting for the gate to report a passage, oldest first, per gate
        self._awaiting_passage: dict[str, list[_Grant]] = {g.id: [] for g in config.gates}
        self._passage_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self.started_at: float | None = None
        self.decisions = 0
        self.last_decision_monotonic: float | None = None
        # None: no MQTT configured; else whether the link to the broker is up (kiosk badge)
        self.link_online: bool | None = None
        punch_clock = time_clock_for(config, self.store, self.outbox, self.feed, self.access,
                                     clock)
        self.time_clock: TimeClock | None = punch_clock.time_clock if punch_clock else None
        self._chain_public_key = punch_clock.chain_public_key if punch_clock else None
        self.http: LocalHttpServer | None = local_http_for(config, self.time_clock, self.feed,
                                                           lambda: self.link_online)
        self.pos: PosRuntime | None = None
        self.print_queue: PrintQueue | None = None
        self.fire_alarm = False
        # what the state reports as running; the simulated fleet sets the version its
        # update root points at (simulators/fleet_updates.py)
        self.software_version = __version__
        self.updates: UpdateMonitor | None = None  # [update]: agent/update/trial.py

    # -- lifecycle ---------------------------------------------------------------

    def _use(self, peripherals: Peripherals) -> None:
        self.readers, self.gates = peripherals.readers, peripherals.gates
        self.displays, self.printers = peripherals.displays, peripherals.printers

    def start(self) -> None:
        self._use(open_peripherals(self.config))
        self.pos = pos_runtime_for(self.config, self.store, self.outbox, self.printers,
                                   self.http, self.displays)
        self.print_queue = print_queue_for(self.store, self.printers)
        self._start_peripherals()
        if self.time_clock is not None:
            self.time_clock.start()
        if self.pos is not None:
            self.pos.start()
        if self.print_queue is not None:
            self.print_queue.start()
        if self.http is not None:
            self.http.start()
        if self.site_presence is not None:
            self.site_presence.start()
        self.started_at = time.monotonic()
        log.info(
            "agent started tenant=%s device=%s version=%s readers=%d gates=%d",
            self.config.tenant, self.config.device, __version__, len(self.readers),
            len(self.gates),
        )

    def _start_peripherals(self) -> None:
        for display in self.displays.values():
            display.start()
        for gate in self.gates.values():
            gate.set_passage_handler(self._on_passage)
            if isinstance(gate, FireAlarmInput):
                gate.set_alarm_handler(self._on_fire_alarm)
            gate.start()
            if self.fire_alarm and isinstance(gate, HoldableGate):
                gate.hold_open(True)  # a reload during an alarm keeps the gates free
        for printer in self.printers.values():
            printer.start()
        for reader in self.readers.values():
            if isinstance(reader, ReportsReaderAlerts):
                reader.set_alert_handler(self._on_reader_alert)
            reader.start(self.handle_read)

    def stop(self) -> None:
        if self.site_presence is not None:
            self.site_presence.stop()
        if self.http is not None:
            self.http.stop()
        if self.pos is not None:
            self.pos.stop()
        if self.print_queue is not None:
            self.print_queue.stop()
        if self.time_clock is not None:
            self.time_clock.stop()  # records punches still pending, signs the chain head
        for group in (self.readers, self.gates, self.displays, self.printers):
            for peripheral in group.values():
                try:
                    peripheral.stop()
                except Exception:  # a stuck peripheral must not keep the others running
                    log.exception("stopping %s failed", peripheral.id)
        self.store.close()
        log.info("agent stopped")

    # -- the tap path -------------------------------------------------------------

    def handle_read(self, read: CardRead) -> TapOutcome | PunchView | TillReadView:
        reader_cfg = self._reader_cfg.get(read.reader_id)
        if reader_cfg is None:
            raise BadInput(f"read from unknown reader '{read.reader_id}'")
        if reader_cfg.terminal is not None:
            return self._punch(reader_cfg.terminal, read)
        if reader_cfg.till:
            if self.pos is None or self.pos.till is None:
                raise BadInput(f"reader '{read.reader_id}' serves the till, which is not "
                               "running")
            return self.pos.till.reads.offer(read)
        assert reader_cfg.gate is not None
        gate_cfg = self._gate_cfg[reader_cfg.gate]
        gate_ctx = GateContext(gate_cfg.id, gate_cfg.zone, reader_cfg.direction,
                               gate_cfg.require_secure_card)
        outcome = self.access.tap(read.reader_id, read.kind, read.value, gate_ctx, read.extra)
        decision = outcome.decision
        if decision.granted and not outcome.repeat:
            if outcome.event is not None and outcome.member_id is not None:
                with self._passage_lock:
                    queue = self._awaiting_passage[gate_cfg.id]
                    queue.append(_Grant(outcome.member_id, decision.entitlement_id,
                                        decision.consume, outcome.event.seq))
                    del queue[:-16]
            try:
                self.gates[gate_cfg.id].open(reader_cfg.direction, gate_cfg.pulse_ms)
            except DriverError as exc:
                # granted but the turnstile did not move: nobody passed, so the entry
                # is given back the same way as when nobody walks through
                log.error("gate %s did not open: %s", gate_cfg.id, exc)
                self.feed.publish({"kind": "gate_error", "gate": gate_cfg.id,
                                   "error": str(exc)})
                self._on_passage(GatePulse(gate_cfg.id, reader_cfg.direction,
                                           gate_cfg.pulse_ms), False)
            else:
                self.feed.publish({"kind": "pulse", "gate": gate_cfg.id,
                                   "direction": reader_cfg.direction,
                                   "pulse_ms": gate_cfg.pulse_ms})
        self._feedback(read.reader_id, decision.granted)
        if gate_cfg.display and gate_cfg.display in self.displays:
            style = DisplayStyle.GRANTED if decision.granted else DisplayStyle.DENIED
            self.displays[gate_cfg.display].show(DisplayMessage(decision.message, style))
        self.decisions += 1
        self.last_decision_monotonic = time.monotonic()
        self.feed.publish({
            "kind": "decision",
            "gate": gate_cfg.id,
            "reader": read.reader_id,
            "granted": decision.granted,
            "reason": decision.reason.value,
            "message": decision.message,
            "repeat": outcome.repeat,
            "seq": outcome.event.seq if outcome.event else None,
            "latency_ms": round((time.monotonic() - read.seen_at) * 1000, 3),
        })
        return outcome

    def _punch(self, terminal: str, read: CardRead) -> PunchView:
        assert self.time_clock is not None
        view = self.time_clock.read(terminal, read.kind, read.value)
        self._feedback(read.reader_id, view.status != "refused")
        display_id = next(t.display for t in self.config.terminals if t.id == terminal)
        if display_id and display_id in self.displays:
            style = DisplayStyle.DENIED if view.status == "refused" else DisplayStyle.GRANTED
            self.displays[display_id].show(DisplayMessage(view.message, style))
        self.decisions += 1
        self.last_decision_monotonic = time.monotonic()
        return view

    def _feedback(self, reader_id: str, granted: bool) -> None:
        """The reader's own LED and buzzer, where it has them (OSDP readers)."""
        reader = self.readers.get(reader_id)
        if isinstance(reader, ReaderFeedback):
            try:
                reader.feedback(granted)
            except Exception:  # a reader that cannot beep must not fail the decision
                log.exception("reader %s: feedback failed", reader_id)

    def _on_reader_alert(self, alert: ReaderAlert) -> None:
        """Reader offline, tamper or refused (and their end): an event for the office."""
        data = {"reader": alert.reader_id, "active": alert.active, "detail": alert.detail}
        try:
            with self.store.transaction() as conn:
                self.outbox.append(conn, _ALERT_EVENTS[alert.condition], data,
                                   self.access.clock())
        except Exception:
            log.exception("recording the %s alert of reader %s failed", alert.condition.value,
                          alert.reader_id)
        self.feed.publish({"kind": "reader_alert", "condition": alert.condition.value, **data})

    def _on_passage(self, pulse: GatePulse, passed: bool) -> None:
        with self._passage_lock:
            queue = self._awaiting_passage.get(pulse.gate_id, [])
            grant = queue.pop(0) if queue else None
        if grant is None or passed:
            return
        try:
            event = self.access.passage_missed(grant.member_id, grant.entitlement_id,
                                               grant.consumed, pulse.gate_id, grant.seq)
        except Exception:
            log.exception("recording a missed passage at gate %s failed", pulse.gate_id)
            return
        self.feed.publish({"kind": "passage_missed", "gate": pulse.gate_id, "seq": event.seq})

    def _on_fire_alarm(self, active: bool) -> None:
        """A fire-alarm input on any gate controller frees every gate of the site (escape
        routes); the change is recorded as an event so the office sees it."""
        if active == self.fire_alarm:
            return
        self.fire_alarm = active
        log.warning("fire alarm %s: %s all gates", "ACTIVE" if active else "cleared",
                    "holding open" if active else "releasing")
        for gate in self.gates.values():
            if isinstance(gate, HoldableGate):
                try:
                    gate.hold_open(active)
                except Exception:  # one broken output must not keep the others closed
                    log.exception("gate %s could not be held open", gate.id)
        try:
            with self.store.transaction() as conn:
                self.outbox.append(conn, "access.fire_alarm", {"active": active},
                                   self.access.clock())
        except Exception:
            log.exception("recording the fire alarm event failed")
        self.feed.publish({"kind": "fire_alarm", "active": active})

    # -- remote control ---------------------------------------------------------

    def remote_open(self, gate_id: str, direction: str, request_id: str) -> int:
        """Open a gate on the office's command; recorded as an event like any passage."""
        gate_cfg = self._gate_cfg.get(gate_id)
        if gate_cfg is None:
            raise BadInput(f"no gate '{gate_id}' (known: {', '.join(sorted(self._gate_cfg))})")
        if direction not in ("in", "out"):
            raise BadInput("direction must be 'in' or 'out'")
        # pulse first: a gate that cannot open (DriverError) answers the command with the
        # error and records nothing
        self.gates[gate_id].open(direction, gate_cfg.pulse_ms)  # type: ignore[arg-type]
        with self.store.transaction() as conn:
            event = self.outbox.append(conn, "access.remote_open",
                                       {"gate": gate_id, "direction": direction,
                                        "request_id": request_id}, self.access.clock())
        self.feed.publish({"kind": "pulse", "gate": gate_id, "direction": direction,
                           "pulse_ms": gate_cfg.pulse_ms, "remote": True})
        return event.seq

    def record_update(self, data: dict[str, Any]) -> None:
        """An update's outcome (agent/update/trial.py) as a ``device.update`` event."""
        with self.store.transaction() as conn:
            self.outbox.append(conn, "device.update", data, self.access.clock())

    def reload(self) -> dict[str, Any]:
        """Re-read the config file; swap peripherals and rules only if all of it is valid.
        One at a time: the office's reload command and a remote configuration's apply
        (agent/remote_config.py) run on different threads."""
        with self._reload_lock:
            return self._reload()

    def _reload(self) -> dict[str, Any]:
        from agent.config import load_config

        new = load_config(self.config.source)
        for name in ("tenant", "device", "data_dir", "durability"):
            if getattr(new, name) != getattr(self.config, name):
                raise ConfigError(f"{name} changed: restart the agent to apply it")
        if new.keys != self.config.keys:
            raise ConfigError("keys changed: restart the agent to apply them")
        replacement = open_peripherals(new)  # raises before anything running is touched
        for group in (self.readers, self.gates, self.displays, self.printers):
            for peripheral in group.values():
                try:
                    peripheral.stop()
                except Exception:
                    log.exception("stopping %s failed", peripheral.id)
        self.config = new
        set_process_language(new.language)
        self.access.rules = site_rules(new)
        self._use(replacement)
        if self.print_queue is not None:
            self.print_queue.printers = self.printers
        if self.pos is not None and new.pos is not None and new.pos.printer in self.printers:
            self.pos.service.printer = self.printers[new.pos.printer]
        self._reader_cfg = {r.id: r for r in new.readers}
        self._gate_cfg = {g.id: g for g in new.gates}
        if self.site_presence is not None:  # republish covers the gates of the new config
            self.site_presence.gates = tuple(g.id for g in new.gates)
        with self._passage_lock:
            self._awaiting_passage = {g.id: [] for g in new.gates}
        self._start_peripherals()
        log.info("config reloaded: readers=%d gates=%d", len(self.readers), len(self.gates))
        return {"reloaded": True, "readers": sorted(self.readers), "gates": sorted(self.gates)}

    # -- observation --------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        peripherals = []
        for role, pid, p in peripherals_by_role(self):
            h = p.health()
            peripherals.append({"id": pid, "role": role, "url": getattr(p, "url", ""),
                                "health": h.state.value, "detail": h.detail,
                                "dropped": dict(h.dropped)})
        return {
            "tenant": self.config.tenant,
            "device": self.config.device,
            "site": self.config.site,
            "version": self.software_version,
            "update": None if self.updates is None else self.updates.state(),
            "uptime_s": round(time.monotonic() - self.started_at, 1) if self.started_at else 0,
            "membership_version": self.store.membership_version(),
            "outbox_depth": self.outbox.depth(),
            "last_seq": self.outbox.last_seq(),
            "decisions": self.decisions,
            "peripherals": peripherals,
            "fire_alarm": self.fire_alarm,
            "chain_public_key": self._chain_public_key,
            "site_link": None if self.site_presence is None else self.site_presence.state(),
            "till_catalogue": None if self.pos is None else self.pos.till_catalogue(),
        }
