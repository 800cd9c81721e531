"""The bridge's link to a NATS cluster (docs/scale.md): devices speak MQTT 3.1.1 to the
cluster's MQTT listeners, their uplink lands in a replicated JetStream work-queue stream,
and the bridges take it from one durable pull consumer as competing consumers.

Same contract as :class:`cloud_bridge.mqtt_link.BridgeLink` for the ingest path: each
message is handed over as an :class:`Inbound` and acknowledged (``ack``) only after its
effect is committed. A JetStream ack is not tied to a connection: a message acked after
a reconnect still counts, and one never acked comes back after ``ack_wait`` to whichever
bridge fetches next (the ingest is idempotent per device seq, so a redelivery stores
nothing twice).

Downlink (acks, commands, membership data) is a plain NATS publish on the subject that
the MQTT topic maps to ('/' becomes '.'); the cluster delivers it to the device's MQTT
subscription at QoS 0 (a NATS message carries no QoS), which the protocol tolerates:
the device resends until acked and asks again for membership data on a gap.

nats-py is asyncio; it runs on an event loop in a thread of its own so the rest of the
bridge (threads and queues) stays as it is.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import api
from nats.js.errors import NotFoundError

from cloud_bridge.mqtt_link import KINDS
from cloud_bridge.tenant_keys import TENANT_ID
from cloud_bridge.wire import Inbound
from contracts.topics import split_device_topic

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class JetStreamSettings:
    servers: tuple[str, ...]  # nats://host:port of the cluster nodes (any subset)
    prefix: str = "es/v1"
    stream: str = "EDGE_UPLINK"
    consumer: str = "bridges"
    replicas: int = 3
    ack_wait_s: float = 30.0
    max_ack_pending: int = 4000  # over all bridges
    fetch_batch: int = 64
    # fetched but not yet acked, per bridge: small, so that a bridge takes no more than
    # it is about to commit and the others get the rest (one ingest transaction takes
    # up to 64 messages)
    max_inflight: int = 128
    client_id: str = "cloud-bridge"
    username: str | None = None
    password: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None

    def __repr__(self) -> str:
        return (f"JetStreamSettings(servers={self.servers!r}, stream={self.stream!r}, "
                f"consumer={self.consumer!r}, client_id={self.client_id!r})")

    @property
    def subject_prefix(self) -> str:
        return self.prefix.replace("/", ".")

    def stream_subjects(self) -> list[str]:
        return [f"{self.subject_prefix}.*.*.{kind.replace('/', '.')}" for kind in KINDS]


class _Published:
    """What ``publish`` returns: member_sync waits on it like on paho's MessageInfo."""

    def __init__(self, future: concurrent.futures.Future[None]) -> None:
        self.future = future

    def wait_for_publish(self, timeout: float | None = None) -> None:
        self.future.result(timeout)

    def is_published(self) -> bool:
        return self.future.done() and self.future.exception() is None


class JetStreamLink:
    def __init__(self, settings: JetStreamSettings,
                 on_inbound: Callable[[Inbound], None]) -> None:
        self.settings = settings
        self.on_inbound = on_inbound
        self.connected = threading.Event()
        self.generation = 0  # JetStream acks survive reconnects: always valid
        self.stats = {"received": 0, "bad_topic": 0, "connects": 0, "fetch_errors": 0}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="jetstream",
                                        daemon=True)
        self._nc: Any = None
        self._pending: dict[int, Msg] = {}
        self._ids = itertools.count(1)
        self._stopping = asyncio.Event()
        self._fetcher: concurrent.futures.Future[None] | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self, wait_s: float = 0.0) -> None:
        self._thread.start()
        self._fetcher = asyncio.run_coroutine_threadsafe(self._run(), self._loop)
        if wait_s and not self.connected.wait(wait_s):
            log.warning("NATS cluster %s not reachable yet; still trying",
                        ",".join(self.settings.servers))

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._loop.call_soon_threadsafe(self._stopping.set)
        if self._fetcher is not None:
            # stopping: whatever the fetcher died of is logged already
            with contextlib.suppress(Exception):
                self._fetcher.result(10)
        if self._nc is not None:
            asyncio.run_coroutine_threadsafe(self._nc.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # -- what the bridge calls (any thread) --------------------------------------------

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> _Published:
        if retain:
            raise ValueError("the bridge publishes nothing retained on the cluster")
        data = payload.encode() if isinstance(payload, str) else payload
        subject = topic.replace("/", ".")
        return _Published(asyncio.run_coroutine_threadsafe(self._publish(subject, data),
                                                           self._loop))

    def ack(self, msg: Inbound) -> None:
        self._loop.call_soon_threadsafe(self._ack, msg.mid)

    # -- event loop side ------------------------------------------------------------------

    async def _publish(self, subject: str, data: bytes) -> None:
        if self._nc is None:
            raise ConnectionError("not connected to the NATS cluster")
        await self._nc.publish(subject, data)

    def _ack(self, mid: int) -> None:
        m = self._pending.pop(mid, None)
        if m is not None:
            self._loop.create_task(self._ack_one(m))

    async def _ack_one(self, m: Msg) -> None:
        try:
            await m.ack()
        except Exception as exc:  # lost ack: the message comes back and is deduplicated
            log.warning("JetStream ack failed (%s); the message will be redelivered",
                        type(exc).__name__)

    async def _connect(self) -> Any:
        s = self.settings
        tls = None
        if s.tls_ca:
            tls = ssl.create_default_context(cafile=s.tls_ca)
            if s.tls_cert:
                tls.load_cert_chain(s.tls_cert, s.tls_key)

        async def on_disconnect() -> None:
            self.connected.clear()
            if not self._stopping.is_set():
                log.warning("disconnected from the NATS cluster; reconnecting")

        async def on_reconnect() -> None:
            self.stats["connects"] += 1
            self.connected.set()
            log.info("reconnected to %s", self._nc.connected_url.netloc)

        async def on_error(exc: Exception) -> None:
            log.warning("NATS: %s", exc)

        nc = await nats.connect(
            servers=list(s.servers), name=s.client_id, user=s.username, password=s.password,
            tls=tls, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
            allow_reconnect=True, connect_timeout=2, disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect, error_cb=on_error)
        self.stats["connects"] += 1
        return nc

    async def _ensure_stream(self, js: Any) -> None:
        """Create the work-queue stream and the bridges' durable consumer if missing
        (idempotent: every bridge does this at start)."""
        s = self.settings
        try:
            await js.stream_info(s.stream)
        except NotFoundError:
            await js.add_stream(api.StreamConfig(
                name=s.stream, subjects=s.stream_subjects(),
                retention=api.RetentionPolicy.WORK_QUEUE, storage=api.StorageType.FILE,
                num_replicas=s.replicas))
            log.info("created stream %s (%d replicas)", s.stream, s.replicas)
        try:
            await js.consumer_info(s.stream, s.consumer)
        except NotFoundError:
            await js.add_consumer(s.stream, api.ConsumerConfig(
                durable_name=s.consumer, ack_policy=api.AckPolicy.EXPLICIT,
                ack_wait=s.ack_wait_s, max_ack_pending=s.max_ack_pending,
                deliver_policy=api.DeliverPolicy.ALL))

    async def _run(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            try:
                if self._nc is None:
                    self._nc = await self._connect()
                js = self._nc.jetstream(timeout=5)
                await self._ensure_stream(js)
                sub = await js.pull_subscribe_bind(durable=self.settings.consumer,
                                                   stream=self.settings.stream)
                self.connected.set()
                log.info("consuming %s/%s as %s", self.settings.stream,
                         self.settings.consumer, self.settings.client_id)
                await self._fetch_loop(sub)
                return
            except Exception as exc:  # cluster electing a leader, node gone, ...
                self.stats["fetch_errors"] += 1
                log.warning("JetStream not ready (%s: %s); retrying in %.1f s",
                            type(exc).__name__, exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                delay = min(delay * 2, 5.0)

    async def _fetch_loop(self, sub: Any) -> None:
        s = self.settings
        errors = 0
        while not self._stopping.is_set():
            room = s.max_inflight - len(self._pending)
            if room <= 0:
                await asyncio.sleep(0.01)
                continue
            try:
                msgs = await sub.fetch(batch=min(room, s.fetch_batch), timeout=1.0)
                errors = 0
            except NatsTimeout:
                continue
            except Exception as exc:  # leader change, reconnect in progress
                errors += 1
                self.stats["fetch_errors"] += 1
                if errors == 1:
                    log.warning("fetch failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(min(0.1 * errors, 2.0))
                continue
            for m in msgs:
                self._deliver(m)

    def _deliver(self, m: Msg) -> None:
        self.stats["received"] += 1
        inbound = self._inbound(m)
        if inbound is None:
            self.stats["bad_topic"] += 1
            self._loop.create_task(self._ack_one(m))  # can never succeed: not kept
            return
        self._pending[inbound.mid] = m
        try:
            self.on_inbound(inbound)
        except Exception:
            log.exception("dispatching a message from %s/%s failed", inbound.tenant,
                          inbound.device)
            self._ack(inbound.mid)

    def _inbound(self, m: Msg) -> Inbound | None:
        topic = m.subject.replace(".", "/")
        parts = split_device_topic(self.settings.prefix, topic)
        if parts is None or parts[2] not in KINDS:
            log.warning("message on unexpected subject %s dropped", m.subject[:200])
            return None
        tenant, device, kind = parts
        if not TENANT_ID.match(tenant) or not TENANT_ID.match(device):
            log.warning("message on a subject with an invalid tenant/device id dropped: %s",
                        m.subject[:200])
            return None
        return Inbound(tenant, device, kind, m.data, next(self._ids), 1, self.generation)
