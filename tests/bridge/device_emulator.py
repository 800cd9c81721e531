"""A device as the bridge sees it, on a real broker: publishes event batches, follows
the acks, resends from ``acked + 1`` when the ack stalls (as sync/agent_link.py does),
and collects what the bridge sends down (membership data, commands)."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contracts.topics import DeviceTopics


def make_event(tenant: str, device: str, seq: int, type_: str = "device.health",
               data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "tenant": tenant, "device": device, "seq": seq,
            "ts": "2026-11-24T19:06:38.195Z", "type": type_, "data": data or {"n": seq}}


def batch_payload(tenant: str, device: str, events: list[dict[str, Any]]) -> bytes:
    return json.dumps({"v": 1, "tenant": tenant, "device": device, "events": events},
                      separators=(",", ":")).encode()


class DeviceEmulator:
    def __init__(self, port: int, tenant: str, device: str, prefix: str = "es/v1",
                 ack_timeout_s: float = 2.0, protocol: int = mqtt.MQTTv5,
                 username: str | None = None, password: str | None = None,
                 sub_qos: int = 1) -> None:
        self.tenant, self.device = tenant, device
        self.topics = DeviceTopics(prefix, tenant, device)
        self.ack_timeout_s = ack_timeout_s
        self.acked = 0
        self.acks: list[int] = []
        self.ack_event = threading.Condition()
        self.down: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"dev-{tenant}-{device}-{uuid.uuid4().hex[:6]}",
                                  protocol=protocol)
        if username:
            self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(100)
        connected = threading.Event()

        def on_connect(client: mqtt.Client, *_a: Any) -> None:
            # again on every reconnect: a clean session forgets the subscriptions
            client.subscribe([(self.topics.ack, sub_qos), (self.topics.members_sync, sub_qos),
                              (self.topics.members_changes, sub_qos),
                              (self.topics.cmd_wildcard, sub_qos)])
            connected.set()

        self.client.on_connect = on_connect
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert connected.wait(10), "device emulator could not connect"
        time.sleep(0.1)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.topics.ack:
            value = json.loads(msg.payload)["acked_seq"]
            with self.ack_event:
                self.acks.append(value)
                self.acked = max(self.acked, value)
                self.ack_event.notify_all()
        else:
            self.down.put((msg.topic, msg.payload))

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def send(self, lo: int, hi: int, **event_kw: Any) -> None:
        events = [make_event(self.tenant, self.device, s, **event_kw) for s in range(lo, hi + 1)]
        self.publish(self.topics.events, batch_payload(self.tenant, self.device, events))

    def wait_ack(self, seq: int, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.ack_event:
            while self.acked < seq:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.ack_event.wait(left)
        return True

    def wait_acks(self, count: int, timeout: float = 15.0) -> list[int]:
        deadline = time.monotonic() + timeout
        with self.ack_event:
            while len(self.acks) < count and time.monotonic() < deadline:
                self.ack_event.wait(0.05)
            return list(self.acks)

    def stream(self, total: int, batch: int, window: int = 4, deadline_s: float = 120.0) -> int:
        """Push events 1..total as an agent would: a window of batches in flight, resend
        from acked+1 when the ack does not move for ack_timeout_s. Returns resends."""
        sent_upto = 0
        last_progress = time.monotonic()
        last_acked = 0
        resends = 0
        end = time.monotonic() + deadline_s
        while self.acked < total:
            if time.monotonic() > end:
                raise TimeoutError(f"{self.device}: acked {self.acked} of {total}")
            if self.acked != last_acked:
                last_acked, last_progress = self.acked, time.monotonic()
                sent_upto = max(sent_upto, self.acked)
            elif sent_upto > self.acked and time.monotonic() - last_progress > self.ack_timeout_s:
                sent_upto, last_progress = self.acked, time.monotonic()
                resends += 1
            while sent_upto < total and sent_upto - self.acked < window * batch:
                hi = min(total, sent_upto + batch)
                events = [make_event(self.tenant, self.device, s)
                          for s in range(sent_upto + 1, hi + 1)]
                self.client.publish(self.topics.events,
                                    batch_payload(self.tenant, self.device, events), qos=1)
                sent_upto = hi
            with self.ack_event:
                self.ack_event.wait(0.05)
        return resends

    def next_down(self, suffix: str, timeout: float = 10.0) -> bytes:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                topic, payload = self.down.get(timeout=0.1)
            except queue.Empty:
                continue
            if topic.endswith(suffix):
                return payload
        raise TimeoutError(f"nothing on …{suffix} within {timeout} s")

    def drain_down(self, suffix: str, quiet_s: float = 1.0) -> list[bytes]:
        out = []
        while True:
            try:
                out.append(self.next_down(suffix, quiet_s))
            except TimeoutError:
                return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
