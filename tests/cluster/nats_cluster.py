"""A real three-node NATS cluster (JetStream + MQTT listener) on loopback ports, with
its own data directories: never the system nats-server on 4222.

Each node gets one config file with the cluster routes, a JetStream store and an MQTT
listener; users are the bridge (a NATS client) and one user per device that may only
connect over MQTT and only touch its own topics (docs/scale.md)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.mqtt_broker import free_port, wait_for_port

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
BRIDGE_USER = "bridge"
BRIDGE_PASSWORD = "bridge-secret-0123456789"


def device_password(tenant: str, device: str) -> str:
    return f"pw-{tenant}-{device}"


def device_user(prefix: str, tenant: str, device: str) -> str:
    """A device's permissions on NATS subjects (MQTT '/' is '.'): publish its own
    uplink topics, subscribe its own downlink topics; MQTT connections only."""
    base = f"{prefix.replace('/', '.')}.{tenant}.{device}"
    pub = [f"{base}.events", f"{base}.state", f"{base}.cmd-result",
           f"{base}.members.request"]
    # $MQTT.sub.>: the server's own delivery subjects for QoS 1 subscriptions (a
    # JetStream consumer per subscription); without it a QoS 1 SUBSCRIBE is refused
    sub = [f"{base}.ack", f"{base}.cmd.*", f"{base}.members.sync", f"{base}.release",
           f"{base}.config.desired",
           f"{prefix.replace('/', '.')}.{tenant}.members.changes",
           f"{prefix.replace('/', '.')}.{tenant}.members.version", "$MQTT.sub.>"]
    return (f'{{user: "{tenant}-{device}", password: "{device_password(tenant, device)}", '
            f'allowed_connection_types: ["MQTT"], '
            f'permissions: {{publish: {{allow: {pub}}}, subscribe: {{allow: {sub}}}}}}}'
            ).replace("'", '"')


@dataclass
class NatsNode:
    name: str
    client_port: int
    cluster_port: int
    mqtt_port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"


@dataclass
class NatsCluster:
    workdir: Path
    devices: list[tuple[str, str]]
    prefix: str = "es/v1"
    nodes: list[NatsNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.nodes = [NatsNode(f"n{i}", free_port(), free_port(), free_port(),
                               self.workdir / f"n{i}") for i in range(3)]

    @property
    def urls(self) -> str:
        return ",".join(n.url for n in self.nodes)

    def _config(self, node: NatsNode) -> Path:
        routes = ", ".join(f'"nats-route://127.0.0.1:{n.cluster_port}"'
                           for n in self.nodes if n is not node)
        users = ",\n    ".join(
            [f'{{user: "{BRIDGE_USER}", password: "{BRIDGE_PASSWORD}", '
             f'allowed_connection_types: ["STANDARD"]}}']
            + [device_user(self.prefix, t, d) for t, d in self.devices])
        node.workdir.mkdir(parents=True, exist_ok=True)
        conf = node.workdir / "nats.conf"
        conf.write_text(f"""
server_name: {node.name}
listen: 127.0.0.1:{node.client_port}
jetstream {{ store_dir: "{node.workdir / 'js'}", max_memory_store: 64MB, max_file_store: 1GB }}
cluster {{ name: edge, listen: 127.0.0.1:{node.cluster_port}, routes: [{routes}] }}
mqtt {{ listen: 127.0.0.1:{node.mqtt_port}, ack_wait: "5s" }}
authorization {{ users: [
    {users}
] }}
""")
        return conf

    def start_node(self, node: NatsNode) -> None:
        conf = self._config(node)
        log = open(node.workdir / "nats.log", "ab")  # noqa: SIM115 - kept for the process
        node.proc = subprocess.Popen([NATS_SERVER, "-c", str(conf)], stdout=log,
                                     stderr=subprocess.STDOUT)
        wait_for_port(node.client_port)
        wait_for_port(node.mqtt_port, timeout=20)

    def start(self) -> NatsCluster:
        for node in self.nodes:
            conf = self._config(node)
            log = open(node.workdir / "nats.log", "ab")  # noqa: SIM115
            node.proc = subprocess.Popen([NATS_SERVER, "-c", str(conf)], stdout=log,
                                         stderr=subprocess.STDOUT)
        for node in self.nodes:
            wait_for_port(node.client_port)
            wait_for_port(node.mqtt_port, timeout=30)
        return self

    def kill(self, node: NatsNode) -> None:
        assert node.proc is not None
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(10)

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(10)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait()


def wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
