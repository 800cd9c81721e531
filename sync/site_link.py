"""The device's link to its site broker: presence facts out and in, peers up or down.

Every device of a site connects to one Mosquitto on the site LAN (docs/multi_gate.md),
publishes its own presence changes to its own topic and reads every device's. A
retained "up" on the device's alive topic, with a last will of "down", tells the peers
whether it is reachable. paho's background thread runs the connection; the callbacks
the agent gives run on it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from contracts.site_presence import BadPresenceFact, PresenceFact, decode_fact
from contracts.topics import (
    site_alive_topic,
    site_alive_wildcard,
    site_presence_topic,
    site_presence_wildcard,
)
from sync.mqtt_client import BrokerSettings, LastWill, MqttClient, SessionOptions

log = logging.getLogger(__name__)

# a persistent session: facts published while this device was briefly away are queued
# by the broker for it (QoS 1), beside the catch-up republish of each peer on reconnect
SESSION = SessionOptions(clean_start=False, session_expiry_s=24 * 3600)


@dataclass(frozen=True, slots=True)
class SiteLinkSettings:
    broker: BrokerSettings
    prefix: str
    tenant: str
    device: str
    peers: tuple[str, ...]
    key: bytes  # contracts/site_presence.presence_key


class SiteLink:
    """``on_fact`` gets each verified fact of a peer; ``on_connected`` runs after every
    (re)connect and whenever a peer comes up, for the device to republish its own recent
    facts."""

    def __init__(self, settings: SiteLinkSettings, on_fact: Callable[[PresenceFact], None],
                 on_connected: Callable[[], None]) -> None:
        self.settings = settings
        self._on_fact = on_fact
        self._on_connected_cb = on_connected
        s = settings
        self._own_presence = site_presence_topic(s.prefix, s.tenant, s.device)
        self._own_alive = site_alive_topic(s.prefix, s.tenant, s.device)
        self._lock = threading.Lock()
        self._connected = False
        self._peers: dict[str, str] = {p: "unknown" for p in s.peers}
        self.refused = 0  # facts dropped: bad signature, malformed
        self.client = MqttClient(s.broker, will=LastWill(self._own_alive, "down"),
                                 on_connected=self._connected_cb,
                                 on_disconnected=self._disconnected_cb,
                                 on_message=self._message)

    def start(self) -> None:
        self.client.start_background(SESSION, reconnect_delay_s=(1, 5))

    def stop(self) -> None:
        # a clean stop says "down" itself: the will is only sent on a lost connection
        if self.client.is_connected():
            self.client.publish(self._own_alive, "down", retain=True).wait_for_publish(2)
        self.client.stop_background()

    def publish(self, facts: Sequence[PresenceFact]) -> None:
        """Queue facts for the peers (paho keeps QoS 1 messages while disconnected)."""
        for fact in facts:
            self.client.publish(self._own_presence, fact.encode(self.settings.key))

    def state(self) -> dict[str, object]:
        """``cut_off``: the broker or a configured peer is not reachable."""
        with self._lock:
            peers = dict(self._peers)
            connected = self._connected
        cut_off = not connected or any(v != "up" for v in peers.values())
        return {"broker": "up" if connected else "down", "peers": peers, "cut_off": cut_off,
                "refused": self.refused}

    def cut_off(self) -> bool:
        return bool(self.state()["cut_off"])

    # -- paho thread ------------------------------------------------------------------

    def _connected_cb(self, _session_present: bool) -> None:
        s = self.settings
        self.client.subscribe([site_presence_wildcard(s.prefix, s.tenant),
                               site_alive_wildcard(s.prefix, s.tenant)])
        self.client.publish(self._own_alive, "up", retain=True)
        with self._lock:
            self._connected = True
        log.info("site link up: broker %s:%d", s.broker.host, s.broker.port)
        self._on_connected_cb()

    def _disconnected_cb(self, reason: ReasonCode) -> None:
        with self._lock:
            was = self._connected
            self._connected = False
        if was:
            log.warning("site link down: %s; deciding on this device's own view "
                        "(docs/multi_gate.md)", reason)

    def _message(self, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        if len(parts) < 3:
            return
        device, kind = parts[-3], parts[-1]
        if device == self.settings.device:
            return
        if kind == "alive":
            up = msg.payload == b"up"
            with self._lock:
                came_up = up and self._peers.get(device) != "up"
                if device in self._peers or not self.settings.peers:
                    self._peers[device] = "up" if up else "down"
            if came_up:
                # a peer back (or new): it may have missed our facts with its session
                self._on_connected_cb()
            return
        try:
            fact = decode_fact(bytes(msg.payload), self.settings.key)
        except BadPresenceFact as exc:
            self.refused += 1
            log.warning("site presence from %s refused: %s", device, exc)
            return
        if fact.device != device:
            self.refused += 1
            log.warning("site presence on %s's topic claims device %s: refused", device,
                        fact.device)
            return
        try:
            self._on_fact(fact)
        except Exception:  # one bad apply must not stop the network thread
            log.exception("applying site presence from %s failed", device)
