"""A device with an update root for the update tests: the agent runs from
``<root>/current`` under agent/update/process_supervisor.py (the process back-end of
systemd's Restart=always), with sim peripherals and a release key of the kit."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent.control_client import AgentUnreachable, ControlClient
from agent.update.layout import Journal, UpdateLayout
from tests.update.release_kit import REPO, ReleaseKit, release_key_b64, wait_until

CONFIG = """
tenant = "t1"
device = "{device}"
site = "s1"
data_dir = "{data}"

[keys]
credential_hmac_key = "base64:{hmac}"

[[gates]]
id = "g1"
url = "sim:"
zone = "main"

[[readers]]
id = "entry"
url = "sim:"
gate = "g1"
direction = "in"

[update]
root = "{root}"
release_public_key = "{release_key}"
ca_file = "{ca}"
confirm_timeout_s = {confirm}
service = "process:{root}/agent.pid"
dependency_site = "{deps}"
{extra}
"""


class Device:
    def __init__(self, kit: ReleaseKit, workdir: Path, name: str = "gate-1",
                 confirm_timeout_s: float = 25.0, extra: str = "") -> None:
        self.kit = kit
        self.workdir = workdir
        self.root = workdir / "opt"
        self.layout = UpdateLayout(self.root)
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "agent.toml"
        self.data = workdir / "data"
        self.config.write_text(CONFIG.format(
            device=name, data=self.data, hmac="aGFyZHdhcmUta2V5LWZvci10ZXN0cy0wMTIzNDU2Nzg=",
            root=self.root, release_key=release_key_b64(kit), ca=kit.server.ca,
            confirm=confirm_timeout_s, deps=kit.deps, extra=extra))
        self.supervisor: subprocess.Popen[bytes] | None = None

    # -- the supervised agent --------------------------------------------------------

    def start(self) -> None:
        self.supervisor = subprocess.Popen(
            [sys.executable, "-m", "agent.update.process_supervisor", "--root", str(self.root),
             "--pid-file", str(self.root / "agent.pid"), "--log", str(self.workdir / "agent.log"),
             "--", "run", "-c", str(self.config), "--plain-logs"],
            env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True)

    def status(self) -> dict[str, Any] | None:
        try:
            return ControlClient(self.data / "agent.sock", timeout=5).request("status")
        except (AgentUnreachable, OSError, ValueError):
            return None

    def running_version(self) -> str | None:
        status = self.status()
        return None if status is None else str(status["version"])

    def wait_version(self, version: str, timeout: float = 60) -> None:
        wait_until(lambda: self.running_version() == version, timeout,
                   f"the agent running {version} (log: {self.log_tail()})")

    def wait_journal(self, *states: str, timeout: float = 90) -> Journal:
        found = wait_until(lambda: (j := self.layout.read_journal()) is not None
                           and j.state in states and j, timeout,
                           f"journal in {states} (now {self.layout.read_journal()}; guard log: "
                           f"{self.guard_log()})")
        assert isinstance(found, Journal)
        return found

    def power_cut(self) -> None:
        """kill -9 of everything the device runs: agent, supervisor, guard."""
        pids = []
        with contextlib.suppress(OSError, ValueError):
            pids.append(int((self.root / "agent.pid").read_text()))
        journal = self.layout.read_journal()
        if journal is not None and journal.guard_pid:
            pids.append(journal.guard_pid)
        if self.supervisor is not None:
            pids.append(self.supervisor.pid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.supervisor is not None:
            self.supervisor.wait(10)
            self.supervisor = None
        (self.data / "agent.sock").unlink(missing_ok=True)

    def stop(self) -> None:
        if self.supervisor is not None and self.supervisor.poll() is None:
            self.supervisor.terminate()
            try:
                self.supervisor.wait(20)
            except subprocess.TimeoutExpired:
                self.power_cut()
        journal = self.layout.read_journal()
        if journal is not None and journal.guard_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(journal.guard_pid, signal.SIGKILL)

    # -- the guard, as the agent starts it -------------------------------------------------

    def run_guard(self, offer: bytes, fault: str | None = None,
                  timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``python -m agent.update apply`` from the current environment, as the agent's
        monitor launches it; ``fault`` (e.g. ``update.install``) kills it there."""
        self.layout.offer_path.write_bytes(offer)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        if fault:
            env["EDGE_AGENT_FAULT"] = f"{fault}:1"
        python = self.layout.current.resolve() / "bin" / "python"
        return subprocess.run([str(python), "-m", "agent.update", "apply", "-c",
                               str(self.config)], capture_output=True, text=True, env=env,
                              timeout=timeout, cwd=self.root)

    def update_cli(self, verb: str) -> subprocess.CompletedProcess[str]:
        python = self.layout.current.resolve() / "bin" / "python"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        return subprocess.run([str(python), "-m", "agent.update", verb, "-c", str(self.config)],
                              capture_output=True, text=True, env=env, timeout=60,
                              cwd=self.root)

    # -- what it recorded ------------------------------------------------------------------

    def update_events(self) -> list[dict[str, Any]]:
        with contextlib.closing(sqlite3.connect(self.data / "agent.sqlite3")) as conn:
            rows = conn.execute("SELECT data FROM outbox WHERE type = 'device.update' "
                                "ORDER BY seq").fetchall()
        return [json.loads(r[0]) for r in rows]

    def wait_update_events(self, timeout: float = 30) -> list[dict[str, Any]]:
        """The outcome is reported at the agent's next health tick (every 5 s)."""
        found = wait_until(self.update_events, timeout, "a device.update event")
        assert isinstance(found, list)
        return found

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join((self.workdir / "agent.log").read_text(errors="replace")
                             .splitlines()[-n:])
        except OSError:
            return "(no log)"

    def guard_log(self) -> str:
        try:
            return (self.root / "guard.log").read_text(errors="replace")[-3000:]
        except OSError:
            return "(no guard log)"
