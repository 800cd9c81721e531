"""The bridge's broker link in a process holding more than 1024 descriptors (a bridge
with database pools, web workers and many clients): its socket lands above descriptor
1023, where select() cannot wait. paho's own network thread (loop_start) waits with
select() and lost such a link before the CONNACK, at every reconnect; the bridge now
drives sync/mqtt_client.py's poll()-based loop on its own thread.

Against a real Mosquitto: connect, receive a device's event and ack it, then the broker
restarts and the link comes back, its new socket again above 1023."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cloud_bridge.mqtt_link import BridgeLink, MqttSettings
from cloud_bridge.wire import Inbound
from sync.mqtt_client import BrokerSettings, MqttClient, SessionOptions
from tests.low_descriptors import low_descriptors_taken
from tests.mqtt_broker import Broker


@pytest.fixture
def high_descriptors() -> Iterator[None]:
    """Descriptors 0..1024 taken, so every socket opened now is numbered above 1023."""
    with low_descriptors_taken(1100):
        yield


def wait_for(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check() and time.monotonic() < deadline:
        time.sleep(0.02)
    return check()


def device_sends(port: int, topic: str, payload: bytes) -> None:
    device = MqttClient(BrokerSettings(port=port, client_id="t1-d1"))
    device.connect(SessionOptions())
    try:
        assert wait_for(lambda: device.loop(0.05) == 0 and device.is_connected(), 5)
        assert device.publish_and_wait(topic, payload)
    finally:
        device.disconnect()


def test_bridge_link_above_descriptor_1023_connects_receives_and_reconnects(
        tmp_path: Path, high_descriptors: None) -> None:
    broker = Broker(tmp_path / "broker").start()
    received: list[Inbound] = []
    link = BridgeLink(MqttSettings(port=broker.port, client_id="bridge-hi-fd"),
                      received.append)
    try:
        link.start(wait_s=10)
        assert link.connected.is_set(), "no CONNACK: the link was lost above descriptor 1023"
        sock = link.client.paho.socket()
        assert sock is not None and sock.fileno() > 1023
        time.sleep(0.2)  # the SUBACK
        device_sends(broker.port, "es/v1/t1/d1/events", b'{"n": 1}')
        assert wait_for(lambda: len(received) == 1, 5), link.stats
        assert (received[0].tenant, received[0].device, received[0].payload) == (
            "t1", "d1", b'{"n": 1}')
        link.ack(received[0])

        broker.stop()
        assert wait_for(lambda: not link.connected.is_set(), 5)
        broker.start()
        assert wait_for(link.connected.is_set, 10), link.stats
        assert link.stats["connects"] == 2
        sock = link.client.paho.socket()
        assert sock is not None and sock.fileno() > 1023
        time.sleep(0.2)
        device_sends(broker.port, "es/v1/t1/d1/events", b'{"n": 2}')
        assert wait_for(lambda: len(received) == 2, 5), link.stats
    finally:
        started = time.monotonic()
        link.stop()
        stop_s = time.monotonic() - started
        broker.stop()
    assert stop_s < 2, f"stopping the link took {stop_s:.1f} s"
