"""The systemd back-end: ``systemctl restart`` the unit; the guard runs as a transient
unit of its own (``systemd-run``), because a child of the agent would be killed with the
agent's control group at the restart it asks for."""

from __future__ import annotations

import subprocess


class SystemdService:
    def __init__(self, unit: str) -> None:
        self.unit = unit

    def restart(self) -> None:
        subprocess.run(["systemctl", "restart", "--no-block", self.unit], check=True,
                       capture_output=True, timeout=30)

    def launch_detached(self, argv: list[str]) -> int:
        subprocess.run(["systemd-run", "--unit", f"{self.unit.removesuffix('.service')}-update",
                        "--collect", "--quiet", "--", *argv], check=True, capture_output=True,
                       timeout=30)
        out = subprocess.run(["systemctl", "show", "--property", "MainPID", "--value",
                              f"{self.unit.removesuffix('.service')}-update.service"],
                             capture_output=True, text=True, timeout=30, check=False)
        return int(out.stdout.strip() or 0)
