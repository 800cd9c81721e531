"""The systemd back-end: ``systemctl restart`` the unit; the guard runs as a transient
unit of its own (``systemd-run``), because a child of the agent would be killed with the
agent's control group at the restart it asks for. The guard runs as the agent's own user;
the polkit rule ``systemd/50-edge-agent-update.rules`` lets that user restart
``edge-agent.service`` and start ``edge-agent-update.service``, nothing else."""

from __future__ import annotations

import os
import subprocess

from agent.update.service import ServiceError


def _run(argv: list[str]) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"{argv[0]} {argv[1]}: {exc}") from None
    if done.returncode != 0:
        said = " | ".join((done.stderr or done.stdout).strip().splitlines()[-2:])
        raise ServiceError(f"{' '.join(argv[:3])}: exit {done.returncode}: {said}")


class SystemdService:
    def __init__(self, unit: str) -> None:
        self.unit = unit

    def restart(self) -> None:
        _run(["systemctl", "restart", "--no-block", self.unit])

    def launch_detached(self, argv: list[str]) -> int:
        _run(["systemd-run", "--unit", f"{self.unit.removesuffix('.service')}-update",
              "--collect", "--quiet", f"--uid={os.getuid()}", f"--gid={os.getgid()}",
              "--", *argv])
        out = subprocess.run(["systemctl", "show", "--property", "MainPID", "--value",
                              f"{self.unit.removesuffix('.service')}-update.service"],
                             capture_output=True, text=True, timeout=30, check=False)
        return int(out.stdout.strip() or 0)
