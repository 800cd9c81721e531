"""The systemd back-end: ``systemctl restart`` the agent's unit; the guard runs as a unit
of its own, ``edge-agent-update@<verb>.service`` (systemd/edge-agent-update@.service),
because a child of the agent would be killed with the agent's control group at the
restart it asks for. Both run as the agent's user; the polkit rule
``systemd/50-edge-agent-update.rules`` lets that user restart ``edge-agent.service`` and
start those two instances, nothing else.

Not a transient unit (``systemd-run``): systemd asks polkit about starting one without
naming it, so a rule could not allow the guard without allowing any unit, as any user.
The guard unit reads the config the agent's unit reads, /etc/edge-agent/agent.toml."""

from __future__ import annotations

import subprocess
from pathlib import Path

from agent.update.service import ServiceError

GUARD_CONFIG = Path("/etc/edge-agent/agent.toml")  # as in systemd/edge-agent-update@.service


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"{argv[0]} {argv[1]}: {exc}") from None
    if done.returncode != 0:
        said = " | ".join((done.stderr or done.stdout).strip().splitlines()[-2:])
        raise ServiceError(f"{' '.join(argv[:3])}: exit {done.returncode}: {said}")
    return done.stdout


class SystemdService:
    def __init__(self, unit: str) -> None:
        self.unit = unit

    def guard_unit(self, verb: str) -> str:
        return f"{self.unit.removesuffix('.service')}-update@{verb}.service"

    def restart(self) -> None:
        _run(["systemctl", "restart", "--no-block", self.unit])

    def launch_guard(self, verb: str, config: Path) -> int:
        if config.resolve() != GUARD_CONFIG.resolve():
            raise ServiceError(f"the guard unit {self.guard_unit(verb)} reads {GUARD_CONFIG}; "
                               f"this agent runs with {config}")
        unit = self.guard_unit(verb)
        _run(["systemctl", "start", unit])  # Type=exec: returns once the guard runs
        return int(_run(["systemctl", "show", "--property", "MainPID", "--value", unit])
                   .strip() or 0)
