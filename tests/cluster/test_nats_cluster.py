"""Issue 20: a three-node NATS cluster (JetStream + MQTT 3.1.1 listeners) on loopback,
two bridge processes on PostgreSQL consuming one durable work-queue consumer, 20 devices
streaming events; one broker node and one bridge are SIGKILLed mid-storm and brought
back, and every device's events are stored exactly once, seq 1..N. Then the per-device
permissions: a device publishes only as itself, reads only its own topics, and cannot
reach the bridges' stream at all (MQTT-only user, no JetStream API)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, func, select

from cloud_bridge.db_schema import events
from cloud_bridge.tenant_keys import create_tenant
from tests.bridge.conftest import stop_process
from tests.bridge.device_emulator import DeviceEmulator
from tests.cluster.nats_cluster import (
    BRIDGE_PASSWORD,
    BRIDGE_USER,
    NatsCluster,
    device_password,
    wait_until,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TENANTS = ("ta", "tb")
DEVICES = [(TENANTS[i % 2], f"gate-{i:02d}") for i in range(20)]
TOTAL = 300  # events per device
AGENT = ("t1", "dev1")  # the real agent of tests/conftest.py's write_config


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    c = NatsCluster(tmp_path_factory.mktemp("nats"), [*DEVICES, AGENT]).start()
    yield c
    c.stop()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    from cloud_bridge.db_schema import make_engine

    eng = make_engine(pg_url)
    yield eng
    eng.dispose()


def start_bridge(pg_url: str, keys_dir: Path, cluster: NatsCluster, log: Path, name: str
                 ) -> subprocess.Popen[bytes]:
    with open(log, "ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "cloud_bridge", "serve", "--db", pg_url,
             "--nats", cluster.urls, "--http-port", "0", "--keys-dir", str(keys_dir),
             "--client-id", name, "--stats-interval", "0.2", "--nats-ack-wait", "4"],
            cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "BRIDGE_NATS_USER": BRIDGE_USER,
                 "BRIDGE_NATS_PASSWORD": BRIDGE_PASSWORD})


def stream_leader(cluster: NatsCluster) -> str:
    import nats

    async def main() -> str:
        nc = await nats.connect(cluster.urls.split(","), user=BRIDGE_USER,
                                password=BRIDGE_PASSWORD)
        info = await nc.jetstream().stream_info("EDGE_UPLINK")
        await nc.close()
        assert info.cluster is not None and info.cluster.leader
        return str(info.cluster.leader)

    return asyncio.run(main())


def stored_by(log: Path) -> int:
    found = re.findall(r"events_stored=(\d+)", log.read_text(errors="replace"))
    return int(found[-1]) if found else 0


def consuming(log: Path) -> bool:
    return log.read_text(errors="replace").count("consuming ") > 0


def device(cluster: NatsCluster, i: int, tenant: str, name: str) -> DeviceEmulator:
    """Subscriptions at QoS 0: what the bridge publishes through NATS arrives at QoS 0
    anyway, and a QoS 1 subscription costs a JetStream consumer on the cluster that
    under load may take seconds to create (docs/scale.md)."""
    node = cluster.nodes[i % 3]
    dev = DeviceEmulator(node.mqtt_port, tenant, name, ack_timeout_s=2.0,
                         protocol=mqtt.MQTTv311, username=f"{tenant}-{name}",
                         password=device_password(tenant, name), sub_qos=0)
    dev.client.reconnect_delay_set(0.5, 1)
    return dev


def test_storm_survives_a_broker_node_and_a_bridge_dying(
        cluster: NatsCluster, pg_url: str, pg_engine: Engine, tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    for t in TENANTS:
        create_tenant(keys_dir, t)
    logs = [tmp_path / "bridge-a.log", tmp_path / "bridge-b.log"]
    procs = [start_bridge(pg_url, keys_dir, cluster, log, f"bridge-{n}")
             for log, n in zip(logs, "ab", strict=True)]
    devices: list[DeviceEmulator] = []
    try:
        wait_until(lambda: all(consuming(log) for log in logs), 30, "both bridges consuming")
        devices = [device(cluster, i, t, d) for i, (t, d) in enumerate(DEVICES)]
        errors: list[BaseException] = []

        def run(dev: DeviceEmulator) -> None:
            try:
                dev.stream(TOTAL, batch=25, window=4, deadline_s=80)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(d,)) for d in devices]
        for t in threads:
            t.start()
        grand = TOTAL * len(devices)
        wait_until(lambda: sum(d.acked for d in devices) >= grand // 5, 40,
                   "progress before the kills")
        # the node leading the uplink stream: the harshest one to lose (a new leader
        # must be elected while devices publish and bridges fetch)
        leader = stream_leader(cluster)
        victim = next(n for n in cluster.nodes if n.name == leader)
        cluster.kill(victim)  # mid-storm, no goodbye: its devices lose their broker
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        stored_before = stored_by(logs[0])
        time.sleep(2)
        cluster.start_node(victim)
        procs[0] = start_bridge(pg_url, keys_dir, cluster, logs[0], "bridge-a")
        for t in threads:
            t.join(90)
        assert not errors, errors
        assert all(d.acked == TOTAL for d in devices), [d.acked for d in devices]
        assert stored_before > 0 and stored_by(logs[1]) > 0, "both bridges took a share"
        with pg_engine.connect() as conn:
            rows = conn.execute(
                select(events.c.tenant, events.c.device, func.count(),
                       func.count(events.c.seq.distinct()), func.min(events.c.seq),
                       func.max(events.c.seq))
                .where(events.c.tenant.in_(TENANTS))
                .group_by(events.c.tenant, events.c.device)).all()
        assert sorted(tuple(r) for r in rows) == sorted(
            (t, d, TOTAL, TOTAL, 1, TOTAL) for t, d in DEVICES)
    finally:
        for d in devices:
            d.close()
        for p in procs:
            stop_process(p)


# -- per-device permissions ---------------------------------------------------------------

class MqttDevice:
    """A bare MQTT 3.1.1 client with a device's credentials, recording what it gets."""

    def __init__(self, cluster: NatsCluster, tenant: str, name: str) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.subacks: list[int] = []
        self._suback = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"perm-{name}",
                                  protocol=mqtt.MQTTv311)
        self.client.username_pw_set(f"{tenant}-{name}", device_password(tenant, name))
        connected = threading.Event()
        self.client.on_connect = lambda *a: connected.set()
        self.client.on_message = lambda _c, _u, m: self.received.append((m.topic, m.payload))
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("127.0.0.1", cluster.nodes[0].mqtt_port)
        self.client.loop_start()
        assert connected.wait(10)

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        self.subacks = [r.value for r in reasons]
        self._suback.set()

    def subscribe(self, topic: str) -> int:
        self._suback.clear()
        self.client.subscribe(topic, qos=1)
        assert self._suback.wait(10)
        return self.subacks[0]

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def nats_collect(cluster: NatsCluster, subject: str, user: str, password: str,
                 action: Any, settle_s: float = 1.0) -> list[tuple[str, bytes]]:
    """Subscribe on the NATS side, run ``action`` (the MQTT publishes), collect."""
    import nats

    got: list[tuple[str, bytes]] = []

    async def main() -> None:
        nc = await nats.connect(cluster.nodes[0].url, user=user, password=password)

        async def cb(msg: Any) -> None:
            got.append((msg.subject, msg.data))

        await nc.subscribe(subject, cb=cb)
        await nc.flush()
        await asyncio.get_running_loop().run_in_executor(None, action)
        await asyncio.sleep(settle_s)
        await nc.close()

    asyncio.run(main())
    return got


def test_device_publishes_only_as_itself(cluster: NatsCluster) -> None:
    dev = MqttDevice(cluster, "ta", "gate-00")
    try:
        def publish_all() -> None:
            for suffix in ("events", "state", "cmd-result", "members/request"):
                dev.publish(f"es/v1/ta/gate-00/{suffix}", b"mine")
                dev.publish(f"es/v1/ta/gate-02/{suffix}", b"forged")  # another device
                dev.publish(f"es/v1/tb/gate-00/{suffix}", b"forged")  # another tenant
            dev.publish("es/v1/ta/gate-00/ack", b"forged")  # posing as the cloud
            dev.publish("es/v1/ta/members/changes", b"forged")
            dev.publish("es/v1/ta/gate-02/cmd/open", b"forged")

        got = nats_collect(cluster, "es.v1.>", BRIDGE_USER, BRIDGE_PASSWORD, publish_all)
        assert sorted(got) == sorted(
            (f"es.v1.ta.gate-00.{s}", b"mine")
            for s in ("events", "state", "cmd-result", "members.request"))
    finally:
        dev.close()


def test_device_reads_only_its_own_topics(cluster: NatsCluster) -> None:
    other = MqttDevice(cluster, "tb", "gate-01")
    try:
        refused = 0x80
        assert other.subscribe("es/v1/ta/gate-00/ack") == refused
        assert other.subscribe("es/v1/ta/members/changes") == refused
        assert other.subscribe("es/v1/+/+/events") == refused  # the uplink of everyone
        assert other.subscribe("es/v1/#") == refused
        assert other.subscribe("$JS/API/CONSUMER/MSG/NEXT/EDGE_UPLINK/bridges") == refused
        assert other.subscribe("es/v1/tb/gate-01/ack") == 1  # its own: granted
        # the QoS 1 delivery subjects it must be allowed: no window on the others' traffic
        other.subscribe("$MQTT/sub/#")
        peer = MqttDevice(cluster, "ta", "gate-00")
        assert peer.subscribe("es/v1/ta/gate-00/ack") == 1

        def cloud_publishes() -> None:
            import nats

            async def main() -> None:
                nc = await nats.connect(cluster.nodes[2].url, user=BRIDGE_USER,
                                        password=BRIDGE_PASSWORD)
                await nc.publish("es.v1.ta.gate-00.ack", b'{"v":1,"acked_seq":1}')
                await nc.publish("es.v1.ta.members.changes", b"ta-only")
                await nc.publish("es.v1.tb.gate-01.ack", b'{"v":1,"acked_seq":7}')
                await nc.flush()
                await nc.close()

            asyncio.run(main())

        cloud_publishes()
        wait_until(lambda: other.received, 5, "the device's own ack")
        time.sleep(0.5)
        assert other.received == [("es/v1/tb/gate-01/ack", b'{"v":1,"acked_seq":7}')]
        assert peer.received == [("es/v1/ta/gate-00/ack", b'{"v":1,"acked_seq":1}')]
    finally:
        other.close()
        peer.close()


def test_device_cannot_reach_the_bridges_stream(cluster: NatsCluster) -> None:
    """Devices are MQTT-only users: the NATS protocol, and with it the JetStream API
    (stream, the bridges' consumer), is closed to them even with a valid password."""
    import nats
    from nats.errors import NoServersError

    async def main() -> None:
        with pytest.raises((NoServersError, nats.errors.Error, OSError)):
            nc = await nats.connect(cluster.nodes[0].url, user="ta-gate-00",
                                    password=device_password("ta", "gate-00"),
                                    max_reconnect_attempts=0, allow_reconnect=False,
                                    connect_timeout=2)
            await nc.close()

    asyncio.run(main())
    dev = MqttDevice(cluster, "ta", "gate-00")
    try:
        def try_js() -> None:  # MQTT cannot name a reply subject; the publish is refused
            dev.publish("$JS/API/CONSUMER/MSG/NEXT/EDGE_UPLINK/bridges", b"1")
            dev.publish("$JS/API/STREAM/DELETE/EDGE_UPLINK", b"")

        got = nats_collect(cluster, "$JS.API.>", BRIDGE_USER, BRIDGE_PASSWORD, try_js)
        assert got == []
    finally:
        dev.close()


# -- the real agent over MQTT 3.1.1 -------------------------------------------------------

@pytest.mark.parametrize("subscribe_qos", [1, 0])
def test_agent_with_mqtt_311_syncs_through_the_cluster(
        cluster: NatsCluster, tmp_path: Path, write_config: Callable[..., Path],
        subscribe_qos: int) -> None:
    """``[mqtt] protocol = "3.1.1"``: the real agent link connects to a cluster node (an
    MQTT 5 CONNECT is refused there), its events reach an in-process bridge through the
    JetStream stream, and the bridge's ack comes back down to it."""
    import base64

    from agent.config import load_config
    from agent.daemon import AgentDaemon
    from agent.sync_link import build_agent_link
    from cloud_bridge.jetstream_link import JetStreamSettings
    from cloud_bridge.mqtt_link import MqttSettings
    from cloud_bridge.service import Bridge, BridgeSettings

    keys_dir = tmp_path / "keys"
    created = create_tenant(keys_dir, AGENT[0])
    bridge = Bridge(BridgeSettings(
        db_url=f"sqlite:///{tmp_path / 'bridge.sqlite3'}", keys_dir=keys_dir,
        mqtt=MqttSettings(), jetstream=JetStreamSettings(
            servers=tuple(cluster.urls.split(",")), username=BRIDGE_USER,
            password=BRIDGE_PASSWORD, client_id="bridge-in-test"))).start(10)
    node = cluster.nodes[2]
    cfg = write_config(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {node.mqtt_port}\nprotocol = "3.1.1"\n'
        f'username = "{AGENT[0]}-{AGENT[1]}"\npassword = "{device_password(*AGENT)}"\n'
        f"subscribe_qos = {subscribe_qos}\n",
        public_key=base64.b64decode(created.public_key_b64))
    daemon = AgentDaemon(load_config(cfg))
    daemon.start()
    link = build_agent_link(daemon, daemon.config.mqtt, ack_timeout_s=2.0,  # type: ignore[arg-type]
                            state_interval_s=3600, max_backoff_s=1.0)
    try:
        assert bridge.link.connected.is_set()
        link.start()
        wait_until(lambda: link.subscribed, 20, "the agent connected and subscribed")
        for i in range(3):  # unknown cards: three denials, three events
            daemon.readers["entry"].inject("uid", f"04A1B2C3D4E5F{i}")  # type: ignore[attr-defined]
        wait_until(lambda: link.store.last_seq() >= 3, 10, "three events in the outbox")
        last = link.store.last_seq()
        wait_until(lambda: link.acked == last, 30, "the bridge's ack back on the device")
        with bridge.engine.connect() as conn:
            seqs = conn.execute(select(events.c.seq).where(
                events.c.tenant == AGENT[0], events.c.device == AGENT[1])).scalars().all()
        assert sorted(seqs) == list(range(1, last + 1))
    finally:
        link.stop()
        daemon.stop()
        bridge.stop()


def test_agent_default_protocol_is_refused_by_the_cluster(
        cluster: NatsCluster) -> None:
    """Why the option exists: the cluster's MQTT listener speaks 3.1.1 only."""
    refused: list[Any] = []
    got = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="v5-probe",
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(f"{AGENT[0]}-{AGENT[1]}", device_password(*AGENT))

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        refused.append(reason)
        got.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", cluster.nodes[0].mqtt_port)
    client.loop_start()
    try:
        assert got.wait(10)
        assert refused[0].is_failure
    finally:
        client.loop_stop()
        client.disconnect()
