"""A wave of in-process agents restarting at once in a process holding many descriptors
(bench/rollout_bench.py's rollback wave: a hundred agents, their stores, sockets and
self-test pipes put new sockets above descriptor 1023). Every new link must reach the
broker: select() cannot wait on such a socket, and paho's own loop turned that into
MQTT_ERR_CONN_LOST before the CONNACK, so the links backed off for up to 30 s.

Smaller scale: 20 agents against a real Mosquitto, with the process's low descriptors
taken by /dev/null so the fleet's sockets land where the hundred agents' did."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.fleet import Fleet, FleetSpec
from tests.low_descriptors import low_descriptors_taken
from tests.mqtt_broker import Broker

DEVICES = 20


@pytest.fixture
def high_descriptors() -> Iterator[None]:
    with low_descriptors_taken(1024 + 40 * DEVICES):
        yield


def wait_connected(fleet: Fleet, timeout_s: float) -> float:
    start = time.monotonic()
    while fleet.connected() < len(fleet.agents) and time.monotonic() - start < timeout_s:
        time.sleep(0.05)
    return time.monotonic() - start


def test_a_restart_wave_above_descriptor_1023_reconnects_every_agent(
        tmp_path: Path, high_descriptors: None) -> None:
    broker = Broker(tmp_path / "broker").start()
    spec = FleetSpec(devices=DEVICES, tenant="t1", host="127.0.0.1", port=broker.port,
                     workdir=tmp_path / "fleet", hmac_key=b"k" * 32)
    fleets = [Fleet(spec)]
    try:
        fleets[0].start()
        wait_connected(fleets[0], 10)
        assert fleets[0].connected() == DEVICES
        fleets[0].stop()  # the wave: every agent stops and a new one starts at once
        fleets.append(Fleet(spec))
        fleets[1].start()
        took = wait_connected(fleets[1], 10)
        rows = fleets[1].rows()
        assert all(r["connected"] for r in rows), (took, [r["device"] for r in rows
                                                          if not r["connected"]])
        assert all(r["reconnects"] == 1 for r in rows)  # each connected on its first try
    finally:
        fleets[-1].stop()
        broker.stop()
