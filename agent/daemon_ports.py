"""What the daemon's collaborators may use of it, one small Protocol each.

The control socket, the health checks, the metrics, the watchdog's fault injection and
the device services each see only the part of :class:`agent.daemon.AgentDaemon` they
need; mypy --strict checks the daemon against every one of them (``_daemon_ports`` at
the end of ``agent/assembly.py``). Members are read-only properties: a collaborator reads the
daemon's parts, it never replaces them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from agent.access.service import AccessService
from agent.config import AgentConfig
from agent.live_feed import LiveFeed
from agent.store.local_store import LocalStore
from agent.store.outbox import Outbox
from drivers.protocols import CardReader, Display, Gate, PeripheralHealth, Printer

if TYPE_CHECKING:
    from agent.local_http import LocalHttpServer
    from agent.pos.pos_runtime import PosRuntime


class DecisionPath(Protocol):
    """The access engine and the config it decides with (self-test tap, fault injection)."""

    @property
    def config(self) -> AgentConfig: ...

    @property
    def access(self) -> AccessService: ...


class PeripheralSet(Protocol):
    """The opened peripherals by role (health, metrics, control socket)."""

    @property
    def readers(self) -> Mapping[str, CardReader]: ...

    @property
    def gates(self) -> Mapping[str, Gate]: ...

    @property
    def displays(self) -> Mapping[str, Display]: ...

    @property
    def printers(self) -> Mapping[str, Printer]: ...


class Observable(Protocol):
    """Any peripheral, as its health is reported."""

    @property
    def id(self) -> str: ...

    def health(self) -> PeripheralHealth: ...


def peripherals_by_role(daemon: PeripheralSet) -> list[tuple[str, str, Observable]]:
    """(role, id, peripheral) for every opened peripheral: readers, gates, displays,
    printers. A copy, safe to walk while a reload swaps them."""
    groups: tuple[tuple[str, Mapping[str, Observable]], ...] = (
        ("reader", daemon.readers), ("gate", daemon.gates), ("display", daemon.displays),
        ("printer", daemon.printers))
    return [(role, pid, p) for role, group in groups for pid, p in list(group.items())]


class HealthSubject(DecisionPath, PeripheralSet, Protocol):
    """What ``agent/health.py`` checks: the decision path and the peripherals."""


class MetricsSubject(PeripheralSet, Protocol):
    """What ``agent/metrics.py`` reads: identity and store path from the config, the
    peripherals' health."""

    @property
    def config(self) -> AgentConfig: ...


class ControlSubject(HealthSubject, Protocol):
    """What the control socket serves: status, simulated reads, synthetic members, the
    live feed and the POS receipts."""

    @property
    def store(self) -> LocalStore: ...

    @property
    def feed(self) -> LiveFeed: ...

    @property
    def pos(self) -> PosRuntime | None: ...

    def status(self) -> dict[str, Any]: ...


class SupervisedAgent(HealthSubject, Protocol):
    """What the device services (maintenance, watchdog, metrics) run beside."""

    @property
    def store(self) -> LocalStore: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def feed(self) -> LiveFeed: ...

    @property
    def http(self) -> LocalHttpServer | None: ...


class LinkStatus(Protocol):
    """The MQTT link as health and metrics see it (``sync.agent_link.AgentLink``)."""

    @property
    def connected(self) -> bool: ...

    @property
    def acked(self) -> int: ...
