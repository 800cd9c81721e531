"""A scripted stand-in for the cloud side on a real broker, for agent-link tests that
need to control exactly what the bridge says (acks withheld, forged batches...)."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from contracts.signed_envelope import sign_payload


class CloudHarness:
    def __init__(self, port: int, tenant: str = "t1", auto_ack: bool = True) -> None:
        self.tenant = tenant
        self.auto_ack = auto_ack
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.events: dict[tuple[str, int], dict[str, Any]] = {}
        self.retained_state: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"harness-{port}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        connected = threading.Event()
        self.client.on_connect = lambda *a: connected.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert connected.wait(10), "harness could not connect"
        self.client.subscribe(f"es/v1/{tenant}/#", qos=1)
        time.sleep(0.2)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.messages.put((msg.topic, msg.payload))
        parts = msg.topic.split("/")
        if msg.topic.endswith("/events"):
            batch = json.loads(msg.payload)
            with self._lock:
                for ev in batch["events"]:
                    self.events[(ev["device"], ev["seq"])] = ev
            if self.auto_ack:
                self.ack(parts[3], self.contiguous(parts[3]))
        elif msg.topic.endswith("/state") and msg.payload:
            self.retained_state[parts[3]] = json.loads(msg.payload)

    def contiguous(self, device: str) -> int:
        with self._lock:
            seq = 0
            while (device, seq + 1) in self.events:
                seq += 1
            return seq

    def ack(self, device: str, seq: int) -> None:
        self.client.publish(f"es/v1/{self.tenant}/{device}/ack",
                            json.dumps({"v": 1, "acked_seq": seq}), qos=1)

    def publish(self, topic: str, payload: bytes | str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def signed(self, key: Ed25519PrivateKey, payload: dict[str, Any]) -> bytes:
        return sign_payload(key, payload)

    def wait_for(self, predicate: Callable[[str, bytes], bool], timeout: float = 10.0
                 ) -> tuple[str, bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                topic, payload = self.messages.get(timeout=0.1)
            except queue.Empty:
                continue
            if predicate(topic, payload):
                return topic, payload
        raise TimeoutError("expected message did not arrive")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "",
               every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what or predicate}")
