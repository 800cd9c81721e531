"""The bridge's MQTT connection (sync/mqtt_client.py's client on its background network
thread, which waits with poll() as the device's link does, so a socket above descriptor
1023 works): shared subscriptions, manual acks, reconnects.

Messages are PUBACKed only when the caller says so (``manual_ack=True`` and
:meth:`BridgeLink.ack`), i.e. after their effect is committed. A PUBACK belongs to the
connection the message came on: after a reconnect, the acks of messages received on the
old connection are dropped (the broker redelivers or the device resends).

Session: by default a clean session per connection. Mosquitto (2.0) keeps assigning
shared-subscription messages to a member whose persistent session outlives its
connection, so a dead bridge with a persistent session would strand half of the
traffic until it returned. With a clean session the broker forgets a dead bridge at
once; what that bridge had received but not committed was never PUBACKed nor acked to
the device, and the device resends it (``ack_timeout_s``), which the surviving bridges
then take. ``session_expiry_s`` > 0 is for a single bridge that restarts under the same
client id and wants its unacknowledged messages redelivered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from cloud_bridge.tenant_keys import TENANT_ID
from cloud_bridge.wire import Inbound
from contracts.topics import split_device_topic
from sync.mqtt_client import BrokerSettings, MqttClient, SessionOptions

log = logging.getLogger(__name__)

KINDS = ("events", "state", "cmd-result", "members/request")


@dataclass(frozen=True, slots=True)
class MqttSettings(BrokerSettings):
    """The broker connection (host, port, login, TLS files with the client certificate of
    ``cloud-bridge ca bridge``, whose CN the broker maps to the ACL, keepalive) and the
    bridge's own: topic prefix, share group, session."""

    client_id: str = "cloud-bridge"
    prefix: str = "es/v1"
    share_group: str = "bridge"
    session_expiry_s: int = 0
    receive_maximum: int = 1000  # unacked messages the broker may have out to us

    def __repr__(self) -> str:
        return (f"MqttSettings(host={self.host!r}, port={self.port}, prefix={self.prefix!r}, "
                f"share_group=<secret>, client_id={self.client_id!r})")


class BridgeLink:
    def __init__(self, settings: MqttSettings, on_inbound: Callable[[Inbound], None]) -> None:
        self.settings = settings
        self.on_inbound = on_inbound
        self.connected = threading.Event()
        self._stopping = False
        self.generation = 0
        self.subscribe = True  # False: publish only (a web worker process, web_processes.py)
        self._gen_lock = threading.Lock()
        self.stats = {"received": 0, "bad_topic": 0, "connects": 0}
        self.client = MqttClient(settings, manual_ack=True, max_inflight=200,
                                 on_connected=self._on_connect, on_refused=self._on_refused,
                                 on_disconnected=self._on_disconnect,
                                 on_message=self._on_message)

    def subscriptions(self) -> list[str]:
        """The topics, each shared in the bridges' group (``$share/<group>/`` in front)."""
        return [f"{self.settings.prefix}/+/+/{kind}" for kind in KINDS]

    def start(self, wait_s: float = 0.0) -> None:
        s = self.settings
        self.client.start_background(
            SessionOptions(clean_start=s.session_expiry_s == 0,
                           session_expiry_s=s.session_expiry_s,
                           receive_maximum=s.receive_maximum),
            reconnect_delay_s=(1, 30))
        if wait_s and not self.connected.wait(wait_s):
            log.warning("broker %s:%d not reachable yet; still trying", s.host, s.port)

    def stop(self) -> None:
        self._stopping = True
        self.client.stop_background()

    def publish(self, topic: str, payload: bytes | str, retain: bool = False
                ) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, retain=retain)

    def ack(self, msg: Inbound) -> None:
        if msg.qos == 0:
            return
        with self._gen_lock:
            if msg.generation != self.generation:
                return  # that connection is gone; the mid means nothing on this one
            self.client.ack(msg.mid, msg.qos)

    # -- paho callbacks (network thread) ------------------------------------------

    def _on_refused(self, reason: ReasonCode) -> None:
        log.error("broker refused the bridge: %s (check --mqtt-host/--mqtt-port and "
                  "the broker's ACL for this client)", reason)

    def _on_connect(self, session_present: bool) -> None:
        with self._gen_lock:
            self.generation += 1
        self.stats["connects"] += 1
        if self.subscribe:
            self.client.subscribe(self.subscriptions(), shared_group=self.settings.share_group)
        self.connected.set()
        log.info("connected to %s:%d as %s (session present: %s)", self.settings.host,
                 self.settings.port, self.settings.client_id, session_present)

    def _on_disconnect(self, reason: ReasonCode) -> None:
        if self.connected.is_set() and not self._stopping:
            log.warning("disconnected from the broker: %s; reconnecting", reason)
        self.connected.clear()

    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        self.stats["received"] += 1
        inbound = self._inbound(msg)
        if inbound is None:
            self.stats["bad_topic"] += 1
            if msg.qos:
                self.client.ack(msg.mid, msg.qos)
            return
        try:
            self.on_inbound(inbound)
        except Exception:  # never let a message kill the network thread
            log.exception("dispatching a message from %s/%s failed", inbound.tenant,
                          inbound.device)
            self.ack(inbound)

    def _inbound(self, msg: mqtt.MQTTMessage) -> Inbound | None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            log.warning("message on a topic that is not UTF-8 dropped")
            return None
        parts = split_device_topic(self.settings.prefix, topic)
        if parts is None or parts[2] not in KINDS:
            log.warning("message on unexpected topic %s dropped", topic[:200])
            return None
        tenant, device, kind = parts
        if not TENANT_ID.match(tenant) or not TENANT_ID.match(device):
            log.warning("message on topic with an invalid tenant/device id dropped: %s",
                        topic[:200])
            return None
        with self._gen_lock:
            generation = self.generation
        # paho types the payload bytes | bytearray; it is bytes, so this copies nothing
        return Inbound(tenant, device, kind, bytes(msg.payload), msg.mid, msg.qos, generation)
