"""One whole site for end-to-end tests, every part a real process: Mosquitto, the
``cloud-bridge serve`` process (SQLite file or PostgreSQL) and the ``edge-agent run``
process with simulated peripherals, all on loopback ports of their own."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select

from agent.control_client import ControlClient
from cloud_bridge.db_schema import events, make_engine
from cloud_bridge.tenant_keys import create_tenant
from tests.agent_process import AgentProcess
from tests.cloud_harness import wait_until
from tests.mqtt_broker import Broker, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
TENANT = "t1"

AGENT_TOML = """
tenant = "{tenant}"
device = "{device}"
site = "s1"
data_dir = "{data}"

[keys]
credential_hmac_key = "file:{hmac}"
tenant_public_key = "base64:{public}"

[site_policy]
anti_passback = false

[mqtt]
host = "127.0.0.1"
port = {port}
batch_size = {batch}

[[gates]]
id = "g1"
url = "sim:"
zone = "main"

[[readers]]
id = "entry"
url = "sim:"
gate = "g1"
direction = "in"
"""


class Site:
    def __init__(self, workdir: Path, db_url: str, batch_size: int = 50,
                 bridge_args: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.db_url = db_url
        self.bridge_args = bridge_args  # extra ``cloud-bridge serve`` options
        # a device id of its own: the PostgreSQL database is shared by the tests
        self.device = f"gate-{secrets.token_hex(4)}"
        self.keys_dir = workdir / "bridge-keys"
        created = create_tenant(self.keys_dir, TENANT)
        agent_dir = workdir / "agent"
        (agent_dir / "keys").mkdir(parents=True, mode=0o700)
        hmac = agent_dir / "keys" / "credential_hmac.key"
        shutil.copyfile(created.hmac_key_path, hmac)
        hmac.chmod(0o600)
        self.broker = Broker(workdir / "broker").start()
        self.config = agent_dir / "agent.toml"
        self.config.write_text(AGENT_TOML.format(
            tenant=TENANT, device=self.device, data=agent_dir / "data", hmac=hmac,
            public=created.public_key_b64, port=self.broker.port, batch=batch_size))
        self.token = secrets.token_urlsafe(16)
        self.http_port = free_port()
        self.bridge: subprocess.Popen[bytes] | None = None
        self.bridge_runs = 0
        self.start_bridge()
        self.base = f"http://127.0.0.1:{self.http_port}/api/v1/tenants/{TENANT}"
        self.api = httpx.Client(base_url=self.base, timeout=30,
                                headers={"Authorization": f"Bearer {self.token}"})
        self.agent_runs = 0
        self.agent = self.start_agent()
        self.engine: Engine = make_engine(db_url, create=False)

    # -- processes -------------------------------------------------------------------

    def start_bridge(self) -> None:
        self.bridge_runs += 1
        log = open(self.workdir / f"bridge-{self.bridge_runs}.log", "wb")  # noqa: SIM115
        self.bridge = subprocess.Popen(
            [sys.executable, "-m", "cloud_bridge", "serve", "--db", self.db_url,
             "--mqtt-port", str(self.broker.port), "--http-port", str(self.http_port),
             "--keys-dir", str(self.keys_dir), "--stats-interval", "1", *self.bridge_args],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "BRIDGE_API_TOKEN": self.token})
        log.close()
        wait_for_port(self.http_port, timeout=30)

    def kill_bridge(self) -> None:
        assert self.bridge is not None
        self.bridge.send_signal(signal.SIGKILL)
        self.bridge.wait()

    def start_agent(self, env: dict[str, str] | None = None,
                    wait_socket: bool = True) -> AgentProcess:
        self.agent_runs += 1
        # a SIGKILLed agent leaves its socket file; wait for the new one, not the stale one
        (self.workdir / "agent" / "data" / "agent.sock").unlink(missing_ok=True)
        return AgentProcess(self.config, self.workdir / f"agent-{self.agent_runs}.log",
                            env=env, wait_socket=wait_socket)

    def control(self) -> ControlClient:
        return ControlClient(self.agent.socket, timeout=10)

    def close(self) -> None:
        self.agent.stop()
        if self.bridge is not None and self.bridge.poll() is None:
            self.bridge.terminate()
            try:
                self.bridge.wait(10)
            except subprocess.TimeoutExpired:
                self.bridge.kill()
                self.bridge.wait()
        self.broker.stop()
        self.api.close()
        self.engine.dispose()

    # -- facts -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return self.control().request("status")

    def bridge_version(self) -> int:
        return int(self.api.get(self.base).json()["version"])

    def stored(self) -> list[tuple[int, str, dict[str, Any]]]:
        """(seq, type, data) of the device's events in the bridge DB, in seq order."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(events.c.seq, events.c.type, events.c.data)
                                .where(events.c.tenant == TENANT, events.c.device == self.device)
                                .order_by(events.c.seq)).all()
        return [(int(r[0]), str(r[1]), r[2]) for r in rows]

    def wait_synced(self, timeout: float = 60.0) -> int:
        """Until the agent holds the bridge's membership version; returns it."""
        want = self.bridge_version()
        wait_until(lambda: self.status()["membership_version"] >= want, timeout,
                   f"agent at membership version {want}")
        return want

    def wait_drained(self, timeout: float = 90.0) -> int:
        """Until the bridge stored every event the agent made; returns the last seq."""
        def done() -> bool:
            status = self.status()
            return status["outbox_depth"] == 0 and len(self.stored()) >= status["last_seq"]
        wait_until(done, timeout, "the agent's outbox drained into the bridge DB", every=0.2)
        return int(self.status()["last_seq"])
