"""The one MQTT client both sides use: paho-mqtt 2.x's public API, MQTT 5.

It sets up the login and TLS (a client certificate when given: the broker maps its CN to
the ACL), connects with the session properties the caller chooses, hands connect,
disconnect, subscription and message events to plain callbacks, publishes at QoS 1 and
PUBACKs by hand when asked to (``manual_ack``: only after the caller committed the
message's effect).

Two ways to drive it, kept as the two sides need them:

- by hand (the agent's link, sync/agent_link.py): :meth:`connect` then :meth:`loop` on the
  caller's own thread; reconnects use the caller's backoff with jitter.
- in the background (the bridge, cloud_bridge/mqtt_link.py): :meth:`start_background`,
  a network thread of this class that drives the same :meth:`loop` and reconnects with a
  doubling delay (paho's own ``loop_start`` waits with select() too).
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """Where and as whom to connect; TLS file paths are already resolved."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = ""
    username: str | None = None
    password: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    keepalive_s: int = 30
    # "3.1.1" for a broker without MQTT 5 (a NATS cluster, docs/scale.md): no session
    # expiry, a persistent session until the broker is told otherwise
    protocol: Literal["5", "3.1.1"] = "5"

    @property
    def mqtt5(self) -> bool:
        return self.protocol == "5"

    def __repr__(self) -> str:  # no password in logs
        return (f"BrokerSettings(host={self.host!r}, port={self.port}, "
                f"client_id={self.client_id!r}, tls={self.tls_ca is not None})")


# paho's Properties constructor carries no annotations; typed here once
_new_properties: Callable[[int], Properties] = Properties


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """MQTT 5 session: ``clean_start`` and the expiry the broker keeps it for after a
    disconnect; ``receive_maximum`` bounds the unacked messages it may have out to us."""

    clean_start: bool = True
    session_expiry_s: int = 0
    receive_maximum: int | None = None

    def properties(self) -> Properties:
        props = _new_properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        if self.receive_maximum is not None:
            props.ReceiveMaximum = self.receive_maximum
        return props


@dataclass(frozen=True, slots=True)
class LastWill:
    topic: str
    payload: str
    retain: bool = True


def _ignore(*_args: object) -> None:
    return None


class MqttClient:
    """One connection to the broker; the callbacks run on the network loop's thread."""

    def __init__(
        self,
        broker: BrokerSettings,
        *,
        manual_ack: bool = False,
        reconnect_on_failure: bool = True,
        will: LastWill | None = None,
        max_inflight: int | None = None,
        on_connected: Callable[[bool], None] = _ignore,
        on_refused: Callable[[ReasonCode], None] = _ignore,
        on_disconnected: Callable[[ReasonCode], None] = _ignore,
        on_message: Callable[[mqtt.MQTTMessage], None] = _ignore,
        on_subscribed: Callable[[list[ReasonCode]], None] = _ignore,
    ) -> None:
        self.broker = broker
        self._on_connected = on_connected
        self._on_refused = on_refused
        self._on_disconnected = on_disconnected
        self._on_subscribed = on_subscribed
        self.paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=broker.client_id,
                                protocol=mqtt.MQTTv5 if broker.mqtt5 else mqtt.MQTTv311,
                                clean_session=None if broker.mqtt5 else False,
                                manual_ack=manual_ack,
                                reconnect_on_failure=reconnect_on_failure)
        if broker.username:
            self.paho.username_pw_set(broker.username, broker.password)
        if broker.tls_ca:
            self.paho.tls_set(ca_certs=broker.tls_ca, certfile=broker.tls_cert,
                              keyfile=broker.tls_key)
        if will is not None:
            self.paho.will_set(will.topic, will.payload, qos=1, retain=will.retain)
        if max_inflight is not None:
            self.paho.max_inflight_messages_set(max_inflight)
        self.paho.on_connect = self._connected
        self.paho.on_disconnect = self._disconnected
        self.paho.on_subscribe = self._subscribed
        self.paho.on_message = lambda _c, _u, msg: on_message(msg)
        self._background: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connacks = 0  # accepted CONNACKs: the background loop's backoff starts over

    # -- driving it by hand ----------------------------------------------------------

    def connect(self, session: SessionOptions) -> None:
        """Open the socket (raises OSError when the broker is unreachable); the CONNACK
        arrives through :meth:`loop`."""
        b = self.broker
        if not b.mqtt5:
            self.paho.connect(b.host, b.port, b.keepalive_s)
            return
        self.paho.connect(b.host, b.port, b.keepalive_s, clean_start=session.clean_start,
                          properties=session.properties())

    def loop(self, timeout: float) -> MQTTErrorCode:
        """One round of network work: wait up to ``timeout`` for the socket, then read,
        write and keep alive through paho's public loop_read/loop_write/loop_misc.

        Waits with poll(), not paho's own ``loop()``: that one calls select(), which
        cannot take a descriptor numbered 1024 or above and paho turns the ValueError
        into MQTT_ERR_CONN_LOST — a process with many descriptors open (the fleet
        simulator's hundred agents) then loses every new connection before its CONNACK.
        """
        sock = self.paho.socket()
        if sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        pending = getattr(sock, "pending", None)  # bytes TLS already decrypted
        buffered = pending is not None and pending() > 0
        poller = select.poll()
        poller.register(sock, select.POLLIN | (select.POLLOUT if self.paho.want_write() else 0))
        events = poller.poll(0 if buffered else int(timeout * 1000))
        ready = events[0][1] if events else 0
        if buffered or ready & ~select.POLLOUT:  # data, or an error/hang-up recv reports
            rc = self.paho.loop_read()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self.paho.socket() is None:
                return rc
        if ready & select.POLLOUT:
            rc = self.paho.loop_write()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self.paho.socket() is None:
                return rc
        return self.paho.loop_misc()

    def publish_and_wait(self, topic: str, payload: str | bytes, *, retain: bool = False,
                         timeout_s: float = 3.0) -> bool:
        """Publish and drive the loop until the broker has it (or the time is up)."""
        info = self.publish(topic, payload, retain=retain)
        deadline = time.monotonic() + timeout_s
        while not info.is_published() and time.monotonic() < deadline:
            if self.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
        return info.is_published()

    # -- in the background -------------------------------------------------------------

    def start_background(self, session: SessionOptions, reconnect_delay_s: tuple[int, int]
                         ) -> None:
        """Connect and keep connected on a thread of our own, driving :meth:`loop`.

        Not paho's ``loop_start()``: its thread waits with select() as well, so a bridge
        process with more than 1024 descriptors (database pools, web workers' sockets)
        would lose its broker link before the CONNACK, at every reconnect. Without paho's
        thread, a publish from another thread is written at once by paho itself; one made
        while this thread is in a callback waits for the callback, then goes out."""
        b = self.broker
        if b.mqtt5:
            self.paho.connect_async(b.host, b.port, b.keepalive_s,
                                    clean_start=session.clean_start,
                                    properties=session.properties())
        else:
            self.paho.connect_async(b.host, b.port, b.keepalive_s)
        self._stopping.clear()
        self._background = threading.Thread(target=self._run_background,
                                            args=reconnect_delay_s, name="mqtt-network",
                                            daemon=True)
        self._background.start()

    def stop_background(self) -> None:
        self._stopping.set()
        self.paho.disconnect()
        if self._background is not None:
            self._background.join(10)
            self._background = None

    def _run_background(self, first_delay_s: int, max_delay_s: int) -> None:
        delay = float(first_delay_s)
        while not self._stopping.is_set():
            try:
                self.paho.reconnect()  # to connect_async's broker, with its session
            except OSError as exc:
                log.debug("broker %s:%d unreachable: %s", self.broker.host, self.broker.port,
                          exc)
            else:
                connacks = self._connacks
                # a short wait: stop_background's disconnect closes the socket under the
                # poll, which does not wake it
                while not self._stopping.is_set():
                    if self.loop(timeout=0.25) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                        break
                if self._connacks != connacks:
                    delay = float(first_delay_s)  # a link that got up starts over
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, float(max_delay_s))

    # -- either way --------------------------------------------------------------------

    def subscribe(self, topics: Sequence[str], qos: int = 1, *, shared_group: str | None = None
                  ) -> None:
        """Subscribe to all of ``topics`` in one SUBSCRIBE (``$share/<group>/`` in front
        when ``shared_group`` is given); the broker's answer comes to ``on_subscribed``."""
        prefix = f"$share/{shared_group}/" if shared_group else ""
        if not self.broker.mqtt5:
            self.paho.subscribe([(prefix + topic, qos) for topic in topics])
            return
        self.paho.subscribe([(prefix + topic, SubscribeOptions(qos=qos)) for topic in topics])

    def publish(self, topic: str, payload: str | bytes, *, retain: bool = False
                ) -> mqtt.MQTTMessageInfo:
        return self.paho.publish(topic, payload, qos=1, retain=retain)

    def ack(self, mid: int, qos: int) -> None:
        self.paho.ack(mid, qos)

    def is_connected(self) -> bool:
        return self.paho.is_connected()

    def disconnect(self) -> None:
        self.paho.disconnect()

    # -- paho callbacks ------------------------------------------------------------------

    def _connected(self, _c: mqtt.Client, _u: object, flags: mqtt.ConnectFlags,
                   reason: ReasonCode, _p: Properties | None) -> None:
        if reason.is_failure:
            self._on_refused(reason)
            return
        self._connacks += 1
        self._on_connected(flags.session_present)

    def _disconnected(self, _c: mqtt.Client, _u: object, _f: mqtt.DisconnectFlags,
                      reason: ReasonCode, _p: Properties | None) -> None:
        self._on_disconnected(reason)

    def _subscribed(self, _c: mqtt.Client, _u: object, _mid: int, reasons: list[ReasonCode],
                    _p: Properties | None) -> None:
        self._on_subscribed(reasons)
