"""The one place an agent is put together: from a validated config to a running daemon
(store, readers, gates, printers, time clock, POS, print queue — see
``agent/daemon_parts.py``), its control socket, its MQTT link and the device services
(maintenance, watchdog, metrics).

``edge-agent run``, the fleet simulator and the benchmarks all start agents here, so each
runs the same wiring. A start-up that fails stops what it already started, then raises
an :class:`~agent.errors.EdgeError` naming what to fix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent.access.service import Clock, utc_now
from agent.config import AgentConfig
from agent.control_socket import ControlServer
from agent.daemon import AgentDaemon
from agent.errors import ConfigError, StartupError
from agent.supervisor import DeviceOptions, DeviceServices

if TYPE_CHECKING:
    from agent.daemon_ports import (
        ControlSubject,
        DecisionPath,
        HealthSubject,
        MetricsSubject,
        PeripheralSet,
        SupervisedAgent,
    )
    from agent.remote_config import ConfigApplier
    from agent.update.trial import GuardLauncher, UpdateMonitor
    from sync.agent_link import AgentLink

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AgentParts:
    """Which companions of the daemon to start (the daemon itself always runs)."""

    control_socket: bool = True
    mqtt_link: bool = True  # when the config has [mqtt]
    link_state_interval_s: float | None = None  # None: the link's own default
    # remote configuration (agent/remote_config.py): applied when the config is a file
    remote_config: bool = True
    config_deadline_s: float = 20.0  # how long a new config has to come up healthy
    device: DeviceOptions | None = None  # None: no watchdog, maintenance or metrics
    # [update]: how the update guard starts; None = detached, by [update] service (the
    # simulated fleet runs its guards in threads: simulators/fleet_updates.py)
    guard_launcher: Callable[[AgentConfig], GuardLauncher] | None = None
    # what the device reports as running; None = this code's version
    software_version: str | None = None


@dataclass(slots=True)
class RunningAgent:
    config: AgentConfig
    daemon: AgentDaemon
    control: ControlServer | None = None
    link: AgentLink | None = None
    services: DeviceServices | None = None
    applier: ConfigApplier | None = None

    def stop(self) -> None:
        """Stop in the reverse order of start: services, socket, link, then the daemon
        (which closes the store last)."""
        if self.services is not None:
            self.services.stop()
        if self.control is not None:
            self.control.close()
        if self.applier is not None:
            self.applier.stop()
        if self.link is not None:
            self.link.stop()
        self.daemon.stop()


def build_daemon(config: AgentConfig, clock: Clock = utc_now) -> AgentDaemon:
    """The daemon of a config, not started."""
    return AgentDaemon(config, clock)


def start_agent(config: AgentConfig, parts: AgentParts = AgentParts(), *,
                clock: Clock = utc_now) -> RunningAgent:
    """Start the daemon of ``config`` and the companions ``parts`` asks for."""
    daemon = build_daemon(config, clock)
    daemon.start()
    running = RunningAgent(config, daemon)
    try:
        if parts.software_version is not None:
            daemon.software_version = parts.software_version
        if config.update is not None:
            daemon.updates = _update_monitor(config, daemon, parts.guard_launcher)
        if parts.control_socket:
            running.control = _start_control(config, daemon)
        if parts.mqtt_link and config.mqtt is not None:
            running.applier = _applier(config, daemon, parts)
            running.link = _start_link(daemon, parts.link_state_interval_s, running.applier)
        if parts.device is not None:
            services = DeviceServices(daemon, running.link, parts.device)
            try:
                services.start()
            except (OSError, ValueError) as exc:
                raise StartupError(str(exc)) from exc
            running.services = services
    except BaseException:
        running.stop()
        raise
    return running


def _update_monitor(config: AgentConfig, daemon: AgentDaemon,
                    launcher: Callable[[AgentConfig], GuardLauncher] | None) -> UpdateMonitor:
    """[update]: report the last attempt's outcome once, then take offers (agent/update/)."""
    from agent.update.settings import guard_settings, service_of
    from agent.update.trial import DetachedGuard, UpdateMonitor

    guard = (launcher(config) if launcher is not None
             else DetachedGuard(service_of(config), Path(config.source)))
    monitor = UpdateMonitor(guard_settings(config).layout, daemon.software_version, guard,
                            daemon)
    monitor.report_outcome()
    return monitor


def _start_control(config: AgentConfig, daemon: AgentDaemon) -> ControlServer:
    try:
        control = ControlServer(config.socket_path, daemon)
        control.start()
    except OSError as exc:
        raise ConfigError(
            f"{config.source}: control.socket: cannot listen on {config.socket_path}: "
            f"{exc.strerror or exc}; fix: set control.socket to a path in a folder the agent "
            "may write in") from exc
    return control


def build_link(daemon: AgentDaemon, state_interval_s: float | None = None,
               applier: ConfigApplier | None = None) -> AgentLink:
    """The daemon's MQTT link to the bridge ([mqtt] of its config), not started."""
    # imported here: a device without [mqtt] does not load paho
    from agent.sync_link import build_agent_link

    mqtt = daemon.config.mqtt
    if mqtt is None:
        raise ConfigError(f"{daemon.config.source}: no [mqtt] table: this agent has no link")
    if state_interval_s is None:
        return build_agent_link(daemon, mqtt, applier)
    return build_agent_link(daemon, mqtt, applier, state_interval_s=state_interval_s)


def _applier(config: AgentConfig, daemon: AgentDaemon, parts: AgentParts
             ) -> ConfigApplier | None:
    """The remote-configuration applier, for a config read from a file (an agent built
    in memory, e.g. by the fleet simulator, has no file to apply to)."""
    source = Path(config.source)
    if not parts.remote_config or config.source == "<memory>" or not source.is_file():
        return None
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from agent.remote_config import ConfigApplier

    public = config.tenant_public_key()
    applier = ConfigApplier(source, daemon,
                            Ed25519PublicKey.from_public_bytes(public) if public else None,
                            tenant=config.tenant, device=config.device,
                            deadline_s=parts.config_deadline_s)
    applier.start()
    return applier


def _start_link(daemon: AgentDaemon, state_interval_s: float | None,
                applier: ConfigApplier | None = None) -> AgentLink:
    link = build_link(daemon, state_interval_s, applier)
    link.start()
    return link


if TYPE_CHECKING:
    def _daemon_ports(daemon: AgentDaemon) -> tuple[
            ControlSubject, SupervisedAgent, HealthSubject, MetricsSubject, DecisionPath,
            PeripheralSet]:
        """Never called: mypy --strict checks here that the daemon is every port its
        collaborators take (agent/daemon_ports.py)."""
        return daemon, daemon, daemon, daemon, daemon, daemon
