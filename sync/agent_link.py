"""The agent's MQTT link: pushes the outbox up, takes acks, membership data and commands
down, and publishes the device state. It runs in one thread of its own with its own
SQLite connection, so a slow or absent network never delays a gate decision.

paho-mqtt's network loop is driven by hand (``client.loop``) rather than
``loop_start``: reconnects then use our backoff with jitter, and the outbox pump, the
ack handling and the callbacks all run on this one thread with no locking between them.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError

from agent.config import MqttConfig
from agent.store.local_store import LocalStore
from agent.store.outbox import Outbox
from contracts import strict_json
from contracts.errors import BadInput
from contracts.events import utc_ts
from contracts.messages import MAX_ACK_BYTES, MAX_VERSION_BYTES, Ack, MembersVersion
from contracts.signed_envelope import MAX_ENVELOPE_BYTES, verify_envelope
from contracts.topics import DeviceTopics
from sync.commands import CommandRouter, daemon_commands
from sync.membership_applier import MembershipApplier, Outcome

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 256 * 1024
SESSION_EXPIRY_S = 7 * 24 * 3600
# catch-up re-asks while behind the bridge's advertised version (docs/protocol.md)
CATCH_UP_FIRST_S = 5.0
CATCH_UP_MAX_S = 60.0


class AgentLink:
    def __init__(
        self,
        daemon: Any,
        mqtt_config: MqttConfig,
        *,
        ack_timeout_s: float = 10.0,
        state_interval_s: float = 60.0,
        window_batches: int = 4,
        max_backoff_s: float = 30.0,
        catch_up_first_s: float = CATCH_UP_FIRST_S,
        catch_up_max_s: float = CATCH_UP_MAX_S,
        rng: random.Random | None = None,
    ) -> None:
        cfg = daemon.config
        self.daemon = daemon
        self.mqtt = mqtt_config
        self.topics = DeviceTopics(mqtt_config.topic_prefix, cfg.tenant, cfg.device)
        self.store = LocalStore(cfg.store_path, cfg.durability)  # a connection of our own
        self.outbox = Outbox(self.store, cfg.tenant, cfg.device)
        public = cfg.tenant_public_key()
        self.public_key = Ed25519PublicKey.from_public_bytes(public) if public else None
        self.applier = MembershipApplier(
            self.store, cfg.tenant, self.public_key, on_applied=daemon.access.forget_recent,
        )
        self.commands: CommandRouter = daemon_commands(daemon, self.publish_state)
        self.ack_timeout_s = ack_timeout_s
        self.state_interval_s = state_interval_s
        self.window = window_batches * mqtt_config.batch_size
        self.max_backoff_s = max_backoff_s
        self.catch_up_first_s = catch_up_first_s
        self.catch_up_max_s = catch_up_max_s
        self.rng = rng or random.Random()

        self.connected = False
        # True once the broker confirmed our subscriptions (commands, acks, membership
        # data): a command published before that would not reach us on a fresh session
        self.subscribed = False
        self.acked = int(self.store.get_meta("acked_seq", "0") or 0)
        self.sent_upto = self.acked
        self._last_progress = time.monotonic()
        self._last_state = 0.0
        self._last_request: tuple[float, int] = (0.0, -1)
        # the bridge's version as it advertises it (retained, signed); None until seen
        self.advertised: int | None = None
        self._ask_delay = catch_up_first_s
        self._next_ask = 0.0
        self._stop = threading.Event()
        self.wake = threading.Event()
        self.stats = {"batches_sent": 0, "events_sent": 0, "acks": 0, "resends": 0,
                      "reconnects": 0, "commands": 0, "membership_rejected": 0,
                      "catch_up_requests": 0}

        self.mqtt5 = mqtt_config.protocol == "5"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"edge-{cfg.tenant}-{cfg.device}",
            protocol=mqtt.MQTTv5 if self.mqtt5 else mqtt.MQTTv311,
            # 3.1.1 has no session expiry: a persistent session (clean_session off) the
            # broker keeps until it is told otherwise
            clean_session=None if self.mqtt5 else False,
            reconnect_on_failure=False,
        )
        if mqtt_config.username:
            self.client.username_pw_set(mqtt_config.username, mqtt_config.password)
        if mqtt_config.tls_ca:
            self.client.tls_set(
                ca_certs=str(cfg.path(mqtt_config.tls_ca)),
                certfile=str(cfg.path(mqtt_config.tls_cert)) if mqtt_config.tls_cert else None,
                keyfile=str(cfg.path(mqtt_config.tls_key)) if mqtt_config.tls_key else None,
            )
        self.client.will_set(self.topics.state, json.dumps({"v": 1, "online": False}), qos=1,
                             retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        self.daemon.link_online = False
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        self._thread.join(10)
        self.store.close()

    def _run(self) -> None:
        try:
            self.applier.recover()  # a snapshot apply a kill cut short, before any new data
        except Exception:  # the link must come up even if the clean-up fails
            log.exception("cleaning up after an interrupted snapshot failed")
        backoff = 1.0
        socket_open = False
        while not self._stop.is_set():
            if not socket_open:
                delay = self._try_connect(backoff)
                if delay:
                    backoff = min(backoff * 2, self.max_backoff_s)
                    self._stop.wait(delay)
                    continue
                socket_open = True  # CONNACK arrives through loop() below
            rc = self.client.loop(timeout=0.02)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                socket_open = False
                self.connected = False
                self.daemon.link_online = False
                delay = self._jitter(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                log.warning("mqtt link lost (%s); retrying in %.1f s", rc.name, delay)
                self._stop.wait(delay)
                continue
            if self.connected:
                backoff = 1.0
                try:
                    self._pump()
                    self._periodic()
                except Exception:  # the link must survive anything the store throws
                    log.exception("mqtt link step failed")
                    self._stop.wait(1.0)
            if not self.connected or self.sent_upto - self.acked >= self.window:
                continue
            self.wake.wait(0.05)
            self.wake.clear()
        if self.client.is_connected():
            # a clean goodbye: the last will is only for when we vanish
            info = self.client.publish(self.topics.state, self._state_payload(online=False),
                                       qos=1, retain=True)
            deadline = time.monotonic() + 3
            while not info.is_published() and time.monotonic() < deadline:
                self.client.loop(timeout=0.05)
            self.client.disconnect()

    def _jitter(self, backoff: float) -> float:
        # full jitter: a fleet that lost the broker together does not return together
        return self.rng.uniform(0.5, 1.0) * backoff

    def _try_connect(self, backoff: float) -> float:
        try:
            if self.mqtt5:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = SESSION_EXPIRY_S
                self.client.connect(self.mqtt.host, self.mqtt.port, self.mqtt.keepalive_s,
                                    clean_start=False, properties=props)
            else:
                self.client.connect(self.mqtt.host, self.mqtt.port, self.mqtt.keepalive_s)
        except OSError as exc:
            delay = self._jitter(backoff)
            log.info("broker %s:%d unreachable (%s); retrying in %.1f s", self.mqtt.host,
                     self.mqtt.port, exc.strerror or exc, delay)
            return delay
        return 0.0

    # -- callbacks (run inside client.loop, on this thread) -------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any,
                    _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        self.connected = True
        self.daemon.link_online = True
        self.stats["reconnects"] += 1
        qos = self.mqtt.subscribe_qos
        client.subscribe([
            (self.topics.ack, qos),
            (self.topics.cmd_wildcard, qos),
            (self.topics.members_sync, qos),
            (self.topics.members_changes, qos),
            (self.topics.members_version, qos),
        ])
        # resend whatever the bridge has not acknowledged, from where its ack left off
        self.acked = int(self.store.get_meta("acked_seq", "0") or 0)
        self.sent_upto = self.acked
        self._last_progress = time.monotonic()
        self.publish_state()
        self._request_members(force=True)
        self._ask_delay = self.catch_up_first_s
        self._next_ask = time.monotonic() + self._jitter(self._ask_delay)
        log.info("mqtt connected to %s:%d (session present: %s)", self.mqtt.host,
                 self.mqtt.port, flags.session_present)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, reasons: Any,
                      _p: Any) -> None:
        refused = [r for r in reasons if r.is_failure]
        if refused:
            # a broker ACL that does not grant our topics: say so, it will not fix itself
            log.error("broker refused subscriptions: %s (check the device's ACL)", refused)
        self.subscribed = not refused

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self.connected:
            log.warning("mqtt disconnected: %s", reason)
        self.connected = False
        self.subscribed = False
        self.daemon.link_online = False

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic
        try:
            if topic == self.topics.ack:
                self._on_ack(msg.payload)
            elif topic.startswith(self.topics.base + "/cmd/"):
                self._on_command(topic.rsplit("/", 1)[1], msg.payload)
            elif topic in (self.topics.members_sync, self.topics.members_changes):
                self._on_membership(msg.payload)
            elif topic == self.topics.members_version:
                self._on_version(msg.payload)
        except Exception:  # a bad message must never stop the link
            log.exception("handling a message on %s failed", topic)

    def _on_ack(self, payload: bytes) -> None:
        if len(payload) > MAX_ACK_BYTES:
            log.warning("ack of %d bytes ignored", len(payload))
            return
        try:
            ack = Ack.model_validate(strict_json.loads(payload))
        except (ValidationError, strict_json.StrictJsonError):
            log.warning("malformed ack ignored")
            return
        last = self.outbox.last_seq()
        if ack.acked_seq > last:
            log.warning("ack %d is beyond the last event %d: ignored", ack.acked_seq, last)
            return
        if ack.acked_seq <= self.acked:
            return
        self.outbox.ack(ack.acked_seq)
        self.acked = ack.acked_seq
        self.sent_upto = max(self.sent_upto, self.acked)
        self._last_progress = time.monotonic()
        self.stats["acks"] += 1

    def _on_command(self, name: str, payload: bytes) -> None:
        self.stats["commands"] += 1
        result = self.commands.handle(name, payload)
        self.client.publish(self.topics.cmd_result, json.dumps(result), qos=1)

    def _on_membership(self, payload: bytes) -> None:
        if len(payload) > MAX_ENVELOPE_BYTES:
            self.stats["membership_rejected"] += 1
            log.warning("membership message of %d bytes rejected", len(payload))
            return
        result = self.applier.handle(payload)
        if result.outcome is Outcome.REJECTED:
            self.stats["membership_rejected"] += 1
            return
        # data is flowing (a snapshot can take minutes): do not ask again meanwhile
        self._next_ask = time.monotonic() + self._ask_delay
        if result.outcome is Outcome.GAP:
            self._request_members()
        elif result.outcome is Outcome.APPLIED:
            self._ask_delay = self.catch_up_first_s
            self.publish_state()

    def _on_version(self, payload: bytes) -> None:
        """The bridge's advertised version; being behind it starts the catch-up re-asks."""
        if not payload:
            return  # the retained message was cleared
        try:
            if len(payload) > MAX_VERSION_BYTES:
                raise BadInput(f"{len(payload)} bytes")
            if self.public_key is None:
                raise BadInput("no keys.tenant_public_key configured: cannot verify")
            advert = MembersVersion.model_validate_json(verify_envelope(payload,
                                                                        self.public_key))
            if advert.tenant != self.outbox.tenant:
                raise BadInput(f"for tenant {advert.tenant!r}")
        except (BadInput, ValidationError, ValueError) as exc:
            self.stats["membership_rejected"] += 1
            log.warning("membership version advert rejected: %s", str(exc).splitlines()[0])
            return
        behind = self.advertised is None or advert.version > self.advertised
        self.advertised = advert.version
        if behind and advert.version > self.store.membership_version():
            # a version we do not have yet: ask now, unless a request has just gone out
            # (two answers to one device would be two snapshots crossing each other)
            self._next_ask = min(self._next_ask,
                                 self._last_request[0] + self.catch_up_first_s)

    # -- outgoing ------------------------------------------------------------------

    def _pump(self) -> None:
        now = time.monotonic()
        if self.sent_upto > self.acked and now - self._last_progress > self.ack_timeout_s:
            log.info("no ack for %.0f s: resending from seq %d", self.ack_timeout_s,
                     self.acked + 1)
            self.sent_upto = self.acked
            self._last_progress = now
            self.stats["resends"] += 1
        while self.sent_upto - self.acked < self.window:
            events = self.outbox.pending(self.sent_upto, self.mqtt.batch_size)
            if not events:
                return
            payload = self._batch_payload(events)
            while len(payload) > MAX_BATCH_BYTES and len(events) > 1:
                events = events[: len(events) // 2]
                payload = self._batch_payload(events)
            info = self.client.publish(self.topics.events, payload, qos=1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return  # not connected after all; the next connect rewinds
            if self.sent_upto == self.acked:
                self._last_progress = now
            self.sent_upto = events[-1].seq
            self.stats["batches_sent"] += 1
            self.stats["events_sent"] += len(events)

    def _batch_payload(self, events: list[Any]) -> bytes:
        return json.dumps({
            "v": 1, "tenant": self.outbox.tenant, "device": self.outbox.device,
            "events": [json.loads(e.to_json()) for e in events],
        }, separators=(",", ":"), ensure_ascii=False).encode()

    def _periodic(self) -> None:
        if time.monotonic() - self._last_state >= self.state_interval_s:
            self.publish_state()
        self._catch_up()

    def _catch_up(self) -> None:
        """Ask again, with backoff, while behind the bridge's advertised version: a
        request can be lost (a broker restart that the bridges have not yet come back
        from), and nothing else would ever ask again."""
        if self.advertised is None or time.monotonic() < self._next_ask:
            return
        version = self.store.membership_version()
        if version >= self.advertised:
            self._ask_delay = self.catch_up_first_s
            return
        log.info("membership version %d is behind the bridge's %d: asking (again in %.0f s "
                 "at the latest)", version, self.advertised, self._ask_delay)
        self._request_members(force=True)
        self.stats["catch_up_requests"] += 1
        self._next_ask = time.monotonic() + self._jitter(self._ask_delay)
        self._ask_delay = min(self._ask_delay * 2, self.catch_up_max_s)

    def _state_payload(self, online: bool = True) -> str:
        status = self.daemon.status()
        return json.dumps({
            "v": 1,
            "online": online,
            "ts": utc_ts(datetime.now(UTC)),
            "version": status["version"],
            "site": status["site"],
            "outbox_depth": self.outbox.depth(),
            "last_seq": self.outbox.last_seq(),
            "acked_seq": self.acked,
            "membership_version": self.store.membership_version(),
            "peripherals": status["peripherals"],
            # the public half of the time clock's chain key, so the bridge can check the
            # signed chain heads without a technician copying it over
            **({"chain_public_key": status["chain_public_key"]}
               if status.get("chain_public_key") else {}),
        }, ensure_ascii=False)

    def publish_state(self) -> None:
        self._last_state = time.monotonic()
        self.client.publish(self.topics.state, self._state_payload(), qos=1, retain=True)

    def _request_members(self, force: bool = False) -> None:
        now = time.monotonic()
        version = self.store.membership_version()
        if not force and version == self._last_request[1] and now - self._last_request[0] < 5.0:
            return  # the same question was just asked; its answer is on its way
        self._last_request = (now, version)
        self.client.publish(self.topics.members_request,
                            json.dumps({"v": 1, "since_version": version}), qos=1)
