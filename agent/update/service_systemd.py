"""The systemd back-end: ``systemctl restart`` the unit; the guard runs as a transient
unit of its own (``systemd-run``), because a child of the agent would be killed with the
agent's control group at the restart it asks for. The guard runs as the agent's own user;
the polkit rule ``systemd/50-edge-agent-update.rules`` lets that user restart
``edge-agent.service`` and start ``edge-agent-update.service``, nothing else."""

from __future__ import annotations

import os
import subprocess


class SystemdService:
    def __init__(self, unit: str) -> None:
        self.unit = unit

    def restart(self) -> None:
        subprocess.run(["systemctl", "restart", "--no-block", self.unit], check=True,
                       capture_output=True, timeout=30)

    def launch_detached(self, argv: list[str]) -> int:
        subprocess.run(["systemd-run", "--unit", f"{self.unit.removesuffix('.service')}-update",
                        "--collect", "--quiet", f"--uid={os.getuid()}", f"--gid={os.getgid()}",
                        "--", *argv], check=True, capture_output=True, timeout=30)
        out = subprocess.run(["systemctl", "show", "--property", "MainPID", "--value",
                              f"{self.unit.removesuffix('.service')}-update.service"],
                             capture_output=True, text=True, timeout=30, check=False)
        return int(out.stdout.strip() or 0)
