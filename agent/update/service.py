"""How the guard restarts the agent and starts itself detached: a small Protocol, with a
systemd back-end (production) and a process back-end (a device without systemd, and the
tests: agent/update/process_supervisor.py), chosen by ``[update] service``'s scheme."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class ServiceError(Exception):
    """The service manager refused or failed (a restart, starting the guard); the text
    says which command and what it answered."""


class Restarter(Protocol):
    def restart(self) -> None:
        """Stop the running agent and start it again from ``current``."""
        ...


class ServiceControl(Restarter, Protocol):
    def launch_guard(self, verb: str, config: Path) -> int:
        """Start ``python -m agent.update VERB -c CONFIG`` so that restarting the agent
        does not kill it; its pid."""
        ...


def service_for(spec: str) -> ServiceControl:
    """``systemd:edge-agent.service`` or ``process:/run/edge-agent/agent.pid``."""
    scheme, _, rest = spec.partition(":")
    if scheme == "systemd":
        from agent.update.service_systemd import SystemdService

        return SystemdService(rest)
    if scheme == "process":
        from agent.update.service_process import SupervisedProcess

        return SupervisedProcess(Path(rest))
    raise ValueError(f"[update] service '{spec}': use systemd:<unit> or process:<pid file>")
