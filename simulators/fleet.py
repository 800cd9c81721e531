"""A fleet of simulated agents in one process, for load and scale tests against a broker
and a bridge. Each agent is the real daemon with ``sim:`` peripherals, its own store and
its own MQTT link; only the taps are generated."""

from __future__ import annotations

import base64
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import parse_config
from agent.daemon import AgentDaemon
from agent.sync_link import build_agent_link
from sync.agent_link import AgentLink


@dataclass(frozen=True, slots=True)
class FleetSpec:
    devices: int
    tenant: str
    host: str
    port: int
    workdir: Path
    hmac_key: bytes
    public_key: bytes | None = None
    prefix: str = "fleet"


def device_config(spec: FleetSpec, index: int) -> dict[str, Any]:
    keys: dict[str, str] = {"credential_hmac_key": "base64:" + base64.b64encode(spec.hmac_key)
                            .decode()}
    if spec.public_key:
        keys["tenant_public_key"] = "base64:" + base64.b64encode(spec.public_key).decode()
    return {
        "tenant": spec.tenant,
        "device": f"{spec.prefix}-{index:04d}",
        "site": f"site-{index % 10}",
        "data_dir": str(spec.workdir / f"{spec.prefix}-{index:04d}"),
        "durability": "normal",
        "keys": keys,
        "gates": [{"id": "g1", "url": "sim:", "passage": "unwired"}],
        "readers": [{"id": "entry", "url": "sim:", "gate": "g1", "direction": "in"}],
        "mqtt": {"host": spec.host, "port": spec.port, "keepalive_s": 30},
    }


class Fleet:
    def __init__(self, spec: FleetSpec) -> None:
        self.spec = spec
        self.agents: list[tuple[AgentDaemon, AgentLink]] = []

    def start(self) -> None:
        for i in range(self.spec.devices):
            daemon = AgentDaemon(parse_config(device_config(self.spec, i)))
            daemon.start()
            link = build_agent_link(daemon, daemon.config.mqtt, state_interval_s=30)  # type: ignore[arg-type]
            link.start()
            self.agents.append((daemon, link))

    def tap_load(self, rate_per_device: float, duration_s: float, uids: int = 1000,
                 on_tick: Any = None) -> int:
        """Generate taps on every device at the given rate; returns taps made."""
        made = 0
        lock = threading.Lock()
        stop_at = time.monotonic() + duration_s

        def run(daemon: AgentDaemon, seed: int) -> None:
            nonlocal made
            rng = random.Random(seed)
            interval = 1.0 / rate_per_device
            next_at = time.monotonic()
            reader = daemon.readers["entry"]
            while time.monotonic() < stop_at:
                reader.inject("uid", f"04{rng.randrange(uids):012X}")  # type: ignore[attr-defined]
                with lock:
                    made += 1
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

        threads = [threading.Thread(target=run, args=(d, i), daemon=True)
                   for i, (d, _) in enumerate(self.agents)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            time.sleep(0.2)
            if on_tick:
                on_tick(made)
        return made

    def backlog(self) -> int:
        return sum(d.outbox.depth() for d, _ in self.agents)

    def connected(self) -> int:
        return sum(1 for _, link in self.agents if link.connected)

    def rows(self) -> list[dict[str, Any]]:
        return [{"device": d.config.device, "connected": link.connected,
                 "last_seq": d.outbox.last_seq(), "acked_seq": link.acked,
                 "outbox_depth": d.outbox.depth(), "reconnects": link.stats["reconnects"],
                 "resends": link.stats["resends"]} for d, link in self.agents]

    def stop(self) -> None:
        for daemon, link in self.agents:
            link.stop()
            daemon.stop()
