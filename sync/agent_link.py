"""The agent's MQTT link: pushes the outbox up, takes acks, membership data and commands
down, and publishes the device state. It runs in one thread of its own with its own
SQLite connection, so a slow or absent network never delays a gate decision.

paho-mqtt's network loop is driven by hand (sync/mqtt_client.py, ``MqttClient.loop``)
rather than in the background: reconnects then use our backoff with jitter, and the
outbox pump, the ack handling and the callbacks all run on this one thread with no
locking between them.

The link knows the device only through typed interfaces: :class:`LinkHost` (online
flag, status, "membership changed"), sync/device_store.py's ``DeviceStore`` (outbox and
membership data) and a command router; the agent builds it (agent/sync_link.py).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from contracts import strict_json
from contracts.errors import BadInput
from contracts.events import Event, utc_ts
from contracts.messages import MAX_ACK_BYTES, MAX_VERSION_BYTES, Ack, MembersVersion
from contracts.signed_envelope import MAX_ENVELOPE_BYTES, verify_envelope
from contracts.topics import DeviceTopics, device_config_topic, till_catalogue_topic
from sync.commands import CommandRouter
from sync.device_store import DeviceStore
from sync.membership_applier import MembershipApplier, Outcome
from sync.mqtt_client import BrokerSettings, LastWill, MqttClient, SessionOptions

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 256 * 1024
SESSION_EXPIRY_S = 7 * 24 * 3600
# catch-up re-asks while behind the bridge's advertised version (docs/protocol.md)
CATCH_UP_FIRST_S = 5.0
CATCH_UP_MAX_S = 60.0


@dataclass(frozen=True, slots=True)
class AgentLinkSettings:
    """The device's link: its broker connection, topics and identity."""

    broker: BrokerSettings
    tenant: str
    device: str
    topic_prefix: str = "es/v1"
    batch_size: int = 200
    # QoS of the downlink subscriptions; 0 on a NATS cluster (docs/scale.md)
    subscribe_qos: int = 1


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """What the link reports of the device in its state message."""

    version: str
    site: str
    peripherals: Any  # the device's own report, passed through as JSON
    chain_public_key: str | None = None
    # remote configuration: the applied version and the last outcome (agent/remote_config.py)
    config: dict[str, Any] | None = None
    update: dict[str, Any] | None = None  # the last software update attempt, if any
    # the till's catalogue version and the last refused update (agent/till/catalogue_feed.py)
    till_catalogue: dict[str, Any] | None = None


class LinkHost(Protocol):
    """The device, as the link sees it."""

    def set_link_online(self, online: bool) -> None: ...

    def link_status(self) -> DeviceStatus: ...

    def membership_changed(self) -> None:
        """Membership data was applied: forget what was decided on the old data."""
        ...

    def release_offered(self, payload: bytes) -> None:
        """The retained release offer of this device (empty: withdrawn)."""
        ...


class AgentLink:
    def __init__(
        self,
        host: LinkHost,
        store: DeviceStore,
        settings: AgentLinkSettings,
        commands: Callable[[Callable[[], None]], CommandRouter],
        public_key: Ed25519PublicKey | None,
        *,
        ack_timeout_s: float = 10.0,
        state_interval_s: float = 60.0,
        window_batches: int = 4,
        max_backoff_s: float = 30.0,
        catch_up_first_s: float = CATCH_UP_FIRST_S,
        catch_up_max_s: float = CATCH_UP_MAX_S,
        rng: random.Random | None = None,
        on_desired_config: Callable[[bytes], None] | None = None,
        on_till_catalogue: Callable[[bytes], None] | None = None,
    ) -> None:
        self.host = host
        self.settings = settings
        self.tenant, self.device = settings.tenant, settings.device
        self.topics = DeviceTopics(settings.topic_prefix, settings.tenant, settings.device)
        self.store = store  # a connection of our own
        self.public_key = public_key
        self.applier = MembershipApplier(
            store, settings.tenant, public_key, on_applied=host.membership_changed,
        )
        self.commands: CommandRouter = commands(self.publish_state)
        self.ack_timeout_s = ack_timeout_s
        self.state_interval_s = state_interval_s
        self.window = window_batches * settings.batch_size
        self.max_backoff_s = max_backoff_s
        self.catch_up_first_s = catch_up_first_s
        self.catch_up_max_s = catch_up_max_s
        self.rng = rng or random.Random()
        # remote configuration: signed desired configs go to this handler (it verifies)
        self.on_desired_config = on_desired_config
        self.config_topic = device_config_topic(settings.topic_prefix, settings.tenant,
                                                settings.device)
        # the till: the tenant's signed catalogue goes to this handler (it verifies)
        self.on_till_catalogue = on_till_catalogue
        self.catalogue_topic = till_catalogue_topic(settings.topic_prefix, settings.tenant)
        # subscribed last, each turning one feature off when an older ACL refuses it
        self._optional_topics = [
            *([(self.config_topic, "remote configuration")] if on_desired_config else []),
            *([(self.catalogue_topic, "till catalogue updates")] if on_till_catalogue
              else [])]

        self.connected = False
        # True once the broker confirmed our subscriptions (commands, acks, membership
        # data): a command published before that would not reach us on a fresh session
        self.subscribed = False
        self.acked = self.store.acked_seq()
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

        self.client = MqttClient(
            settings.broker,
            reconnect_on_failure=False,
            will=LastWill(self.topics.state, json.dumps({"v": 1, "online": False})),
            on_connected=self._on_connect,
            on_refused=self._on_refused,
            on_disconnected=self._on_disconnect,
            on_message=self._on_message,
            on_subscribed=self._on_subscribe,
        )
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        self.host.set_link_online(False)
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
                self.host.set_link_online(False)
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
            self.client.publish_and_wait(self.topics.state, self._state_payload(online=False),
                                         retain=True, timeout_s=3)
            self.client.disconnect()

    def _jitter(self, backoff: float) -> float:
        # full jitter: a fleet that lost the broker together does not return together
        return self.rng.uniform(0.5, 1.0) * backoff

    def _try_connect(self, backoff: float) -> float:
        try:
            self.client.connect(SessionOptions(clean_start=False,
                                               session_expiry_s=SESSION_EXPIRY_S))
        except OSError as exc:
            delay = self._jitter(backoff)
            log.info("broker %s:%d unreachable (%s); retrying in %.1f s",
                     self.settings.broker.host, self.settings.broker.port,
                     exc.strerror or exc, delay)
            return delay
        return 0.0

    # -- callbacks (run inside client.loop, on this thread) -------------------------

    def _on_refused(self, reason: ReasonCode) -> None:
        log.error("broker refused the connection: %s", reason)

    def _on_connect(self, session_present: bool) -> None:
        self.connected = True
        self.host.set_link_online(True)
        self.stats["reconnects"] += 1
        self.client.subscribe([
            self.topics.ack,
            self.topics.cmd_wildcard,
            self.topics.members_sync,
            self.topics.members_changes,
            self.topics.members_version,
            self.topics.release,
            *(topic for topic, _what in self._optional_topics),
        ], qos=self.settings.subscribe_qos)
        # resend whatever the bridge has not acknowledged, from where its ack left off
        self.acked = self.store.acked_seq()
        self.sent_upto = self.acked
        self._last_progress = time.monotonic()
        self.publish_state()
        self._request_members(force=True)
        self._ask_delay = self.catch_up_first_s
        self._next_ask = time.monotonic() + self._jitter(self._ask_delay)
        log.info("mqtt connected to %s:%d (session present: %s)", self.settings.broker.host,
                 self.settings.broker.port, session_present)

    def _on_subscribe(self, reasons: list[ReasonCode]) -> None:
        optional = len(self._optional_topics)
        if optional and len(reasons) > optional:
            # the optional topics come last; an ACL older than their feature refuses
            # them, which turns that feature off but nothing else
            reasons, optional_reasons = reasons[:-optional], reasons[-optional:]
            for (topic, what), reason in zip(self._optional_topics, optional_reasons,
                                             strict=True):
                if reason.is_failure:
                    log.warning("broker refused the subscription to %s (%s): no %s "
                                "until the ACL grants it (mosquitto/tenant.acl.template)",
                                topic, reason, what)
        refused = [r for r in reasons if r.is_failure]
        if refused:
            # a broker ACL that does not grant our topics: say so, it will not fix itself
            log.error("broker refused subscriptions: %s (check the device's ACL)", refused)
        self.subscribed = not refused

    def _on_disconnect(self, reason: ReasonCode) -> None:
        if self.connected:
            log.warning("mqtt disconnected: %s", reason)
        self.connected = False
        self.subscribed = False
        self.host.set_link_online(False)

    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic
        payload = bytes(msg.payload)  # typed bytes | bytearray; it is bytes, so no copy
        try:
            if topic == self.topics.ack:
                self._on_ack(payload)
            elif topic.startswith(self.topics.base + "/cmd/"):
                self._on_command(topic.rsplit("/", 1)[1], payload)
            elif topic in (self.topics.members_sync, self.topics.members_changes):
                self._on_membership(payload)
            elif topic == self.topics.members_version:
                self._on_version(payload)
            elif topic == self.config_topic and self.on_desired_config is not None:
                self.on_desired_config(payload)
            elif topic == self.catalogue_topic and self.on_till_catalogue is not None:
                self.on_till_catalogue(payload)
            elif topic == self.topics.release:
                self.host.release_offered(payload)
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
        last = self.store.last_seq()
        if ack.acked_seq > last:
            log.warning("ack %d is beyond the last event %d: ignored", ack.acked_seq, last)
            return
        if ack.acked_seq <= self.acked:
            return
        self.store.ack(ack.acked_seq)
        self.acked = ack.acked_seq
        self.sent_upto = max(self.sent_upto, self.acked)
        self._last_progress = time.monotonic()
        self.stats["acks"] += 1

    def _on_command(self, name: str, payload: bytes) -> None:
        self.stats["commands"] += 1
        result = self.commands.handle(name, payload)
        self.client.publish(self.topics.cmd_result, json.dumps(result))

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
            if advert.tenant != self.tenant:
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
            events = self.store.pending(self.sent_upto, self.settings.batch_size)
            if not events:
                return
            payload = self._batch_payload(events)
            while len(payload) > MAX_BATCH_BYTES and len(events) > 1:
                events = events[: len(events) // 2]
                payload = self._batch_payload(events)
            info = self.client.publish(self.topics.events, payload)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return  # not connected after all; the next connect rewinds
            if self.sent_upto == self.acked:
                self._last_progress = now
            self.sent_upto = events[-1].seq
            self.stats["batches_sent"] += 1
            self.stats["events_sent"] += len(events)

    def _batch_payload(self, events: Sequence[Event]) -> bytes:
        return json.dumps({
            "v": 1, "tenant": self.tenant, "device": self.device,
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
        status = self.host.link_status()
        return json.dumps({
            "v": 1,
            "online": online,
            "ts": utc_ts(datetime.now(UTC)),
            "version": status.version,
            "site": status.site,
            "outbox_depth": self.store.depth(),
            "last_seq": self.store.last_seq(),
            "acked_seq": self.acked,
            "membership_version": self.store.membership_version(),
            "peripherals": status.peripherals,
            # the public half of the time clock's chain key, so the bridge can check the
            # signed chain heads without a technician copying it over
            **({"chain_public_key": status.chain_public_key}
               if status.chain_public_key else {}),
            **({"config": status.config} if status.config is not None else {}),
            **({"update": status.update} if status.update else {}),
            **({"till_catalogue": status.till_catalogue} if status.till_catalogue else {}),
        }, ensure_ascii=False)

    def request_state(self) -> None:
        """From any thread: publish the state soon, on the link's own thread."""
        self._last_state = 0.0
        self.wake.set()

    def publish_state(self) -> None:
        self._last_state = time.monotonic()
        self.client.publish(self.topics.state, self._state_payload(), retain=True)

    def _request_members(self, force: bool = False) -> None:
        now = time.monotonic()
        version = self.store.membership_version()
        if not force and version == self._last_request[1] and now - self._last_request[0] < 5.0:
            return  # the same question was just asked; its answer is on its way
        self._last_request = (now, version)
        self.client.publish(self.topics.members_request,
                            json.dumps({"v": 1, "since_version": version}))
