"""A Mosquitto fleet broker for tests: the repo's mosquitto/ templates rendered for two
tenants (t1 with a bridge identity, t2 without), each on its own TLS listener, with the
share_guard plugin built from mosquitto/share-guard/ (gcc + Debian's mosquitto-dev)."""

from __future__ import annotations

import os
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud_bridge.device_ca import Issued, ListenerFiles, TenantCA, render_broker_config
from tests.mqtt_broker import MOSQUITTO, free_port, wait_for_port

SHARE_GUARD_SRC = Path(__file__).resolve().parents[2] / "mosquitto" / "share-guard"


def build_share_guard(folder: Path) -> Path:
    """Compile the shipped plugin with its own Makefile into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "share_guard.so"
    subprocess.run(["make", "-s", "-C", str(SHARE_GUARD_SRC), f"OUT={out}"], check=True,
                   capture_output=True, timeout=120)
    return out


@dataclass
class Identity:
    folder: Path
    name: str

    @property
    def cert(self) -> Path:
        return self.folder / f"{self.name}.crt"

    @property
    def key(self) -> Path:
        return self.folder / f"{self.name}.key"


def save_identity(folder: Path, name: str, issued: Issued) -> Identity:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.crt").write_bytes(issued.cert_pem)
    assert issued.key_pem is not None
    (folder / f"{name}.key").write_bytes(issued.key_pem)
    (folder / f"{name}.key").chmod(0o600)
    return Identity(folder, name)


@dataclass
class FleetBroker:
    workdir: Path
    cas: dict[str, TenantCA] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def setup(self, tenants: dict[str, tuple[str, ...]]) -> FleetBroker:
        """tenants: id -> bridge names allowed on its listener."""
        conf = ["per_listener_settings true", "persistence false",
                "max_queued_messages 1000", "log_type all", ""]
        if os.geteuid() == 0:
            # started as root Mosquitto switches to user 'mosquitto', which cannot read
            # pytest's 0700 temporary folders
            conf.insert(0, "user root")
        share_guard = build_share_guard(self.workdir / "plugin")
        for tenant, bridges in tenants.items():
            ca = TenantCA.create(tenant).save(self.workdir / "ca")
            self.cas[tenant] = ca
            server = save_identity(self.workdir / "broker" / tenant, "server",
                                   ca.issue_server(["127.0.0.1", "localhost"]))
            assert ca.directory is not None
            port = self.ports[tenant] = free_port()
            files = ListenerFiles(ca.directory / "ca.crt", server.cert, server.key,
                                  ca.directory / "crl.pem",
                                  self.workdir / "broker" / f"{tenant}.acl")
            listener, acl = render_broker_config(tenant, port, files, bind="127.0.0.1",
                                                 bridges=bridges, share_guard=share_guard)
            files.aclfile.write_text(acl)
            conf.append(listener)
        (self.workdir / "mosquitto.conf").write_text("\n".join(conf) + "\n")
        return self

    def start(self) -> FleetBroker:
        log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.workdir / "mosquitto.conf")],
                                     stdout=log, stderr=log)
        log.close()
        for port in self.ports.values():
            wait_for_port(port)
        return self

    def reload(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(1)  # SIGHUP
        time.sleep(0.5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def identity(self, tenant: str, who: str, bridge: bool = False) -> Identity:
        ca = self.cas[tenant]
        issued = ca.issue_bridge(who) if bridge else ca.issue_device(who)
        return save_identity(self.workdir / "clients" / tenant, who, issued)

    def ca_file(self, tenant: str) -> Path:
        d = self.cas[tenant].directory
        assert d is not None
        return d / "ca.crt"


class Client:
    """A paho MQTT 5 client that records CONNACK, SUBACK reason codes and messages."""

    def __init__(self, broker: FleetBroker, tenant: str, ident: Identity | None,
                 client_id: str = "", clean_start: bool = True,
                 session_expiry: int = 0) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.suback: dict[int, list[int]] = {}
        self.puback: dict[int, int] = {}
        self.connack: Any = None
        self.disconnected = threading.Event()
        self._lock = threading.Lock()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5)
        self.c.tls_set(ca_certs=str(broker.ca_file(tenant)),
                       certfile=str(ident.cert) if ident else None,
                       keyfile=str(ident.key) if ident else None)
        self.c.on_connect = lambda c, u, f, rc, p: setattr(self, "connack", rc)
        self.c.on_disconnect = lambda *a: self.disconnected.set()
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_publish = self._on_publish
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = session_expiry
        self.error: Exception | None = None
        try:
            self.c.connect("127.0.0.1", broker.ports[tenant], 30, clean_start=clean_start,
                           properties=props)
        except (ssl.SSLError, OSError) as exc:
            self.error = exc
            return
        self.c.loop_start()
        deadline = time.monotonic() + 5
        while self.connack is None and not self.disconnected.is_set() \
                and time.monotonic() < deadline:
            time.sleep(0.02)

    @property
    def connected(self) -> bool:
        return self.error is None and self.connack is not None and not self.connack.is_failure \
            and not self.disconnected.is_set()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload))

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, codes: list[Any], _p: Any) -> None:
        self.suback[mid] = [int(c.value) for c in codes]

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: Any, _p: Any) -> None:
        self.puback[mid] = int(rc.value)

    def subscribe(self, topic: str) -> int:
        """The SUBACK reason code: 1 = granted QoS 1, 0x87 = not authorised."""
        _rc, mid = self.c.subscribe(topic, qos=1)
        deadline = time.monotonic() + 5
        while mid not in self.suback and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.suback[mid][0]

    def publish(self, topic: str, payload: bytes = b"x") -> int:
        """The PUBACK reason code (0 = accepted; Mosquitto drops unauthorised ones)."""
        info = self.c.publish(topic, payload, qos=1)
        info.wait_for_publish(5)
        return self.puback.get(info.mid, -1)

    def received(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.messages if t == topic]

    def close(self) -> None:
        if self.error is None:
            self.c.disconnect()
            self.c.loop_stop()
