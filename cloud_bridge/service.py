"""One bridge process: the MQTT link, the ingest worker, the members-sync workers and
(optionally) the JSON API, wired together.

The ingest worker takes whatever messages are queued (up to a limit), validates them,
stores them in one transaction, and only after the commit publishes the acks and the
change entries and PUBACKs the messages. A message whose effect is not committed is
never acknowledged at either level, so a bridge can die at any point without loss.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from cloud_bridge.api import ApiContext, create_app
from cloud_bridge.change_feed import ChangeFeed
from cloud_bridge.db_schema import make_engine, write_tx
from cloud_bridge.device_reports import store_command_result, store_state
from cloud_bridge.ingest import Ingestor, IngestResult
from cloud_bridge.member_sync import DEFAULT_MAX_LAG, MemberSync
from cloud_bridge.mqtt_link import BridgeLink, MqttSettings
from cloud_bridge.snapshot import DEFAULT_CHUNK_ROWS
from cloud_bridge.tenant_keys import TenantKeyStore
from cloud_bridge.web.auth import WebAuth
from cloud_bridge.web.context import WebContext
from cloud_bridge.web.server_timing import ServerTimingMiddleware
from cloud_bridge.web.web_app import mount_web
from cloud_bridge.wire import (
    CommandResult,
    DeviceState,
    EventBatch,
    Inbound,
    MembersRequest,
    Rejected,
    parse_events,
    parse_small,
)
from sync.topics import DeviceTopics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BridgeSettings:
    db_url: str
    keys_dir: Path
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    max_lag: int = DEFAULT_MAX_LAG
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    max_messages_per_tx: int = 64
    max_events_per_tx: int = 5000
    sync_workers: int = 2


class Bridge:
    def __init__(self, settings: BridgeSettings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.db_url)
        self.keys = TenantKeyStore(settings.keys_dir)
        self.link = BridgeLink(settings.mqtt, self._dispatch)
        prefix = settings.mqtt.prefix
        self.feed = ChangeFeed(self.keys, self.link, prefix)
        self.member_sync = MemberSync(self.engine, self.keys, self.link, prefix,
                                      max_lag=settings.max_lag, chunk_rows=settings.chunk_rows)
        self.ingestor = Ingestor(self.engine)
        self._ingest_q: queue.Queue[Inbound] = queue.Queue()
        self._sync_q: queue.Queue[Inbound] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.stats = {"events_stored": 0, "messages": 0, "transactions": 0, "rejected": 0,
                      "acks_published": 0, "db_retries": 0, "sync_answers": 0}

    # -- lifecycle -------------------------------------------------------------------

    def start(self, wait_connected_s: float = 10.0) -> Bridge:
        self._threads = [threading.Thread(target=self._ingest_loop, name="ingest", daemon=True)]
        self._threads += [threading.Thread(target=self._sync_loop, name=f"members-sync-{i}",
                                           daemon=True)
                          for i in range(self.settings.sync_workers)]
        for t in self._threads:
            t.start()
        self.link.start(wait_s=wait_connected_s)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)
        self.link.stop()

    def api_context(self, api_token: str | None) -> ApiContext:
        return ApiContext(self.engine, self.keys, self.feed, self.link,
                          self.settings.mqtt.prefix, api_token)

    def app(self, api_token: str | None, *, web: bool = True,
            secure_cookies: bool = True) -> Any:
        """The JSON API and, unless ``web`` is off, the staff web modules beside it."""
        app = create_app(self.api_context(api_token))
        if web:
            from cloud_bridge.member_qr import make_member_qr_router
            from cloud_bridge.member_qr_links import credential_getter, load_link_key

            link_key = load_link_key(self.settings.keys_dir)
            ctx = WebContext(self.engine, self.keys, self.feed, self.link,
                             self.settings.mqtt.prefix,
                             WebAuth(self.engine, secure_cookies=secure_cookies), link_key)
            mount_web(app, ctx)
            # the members' phone page: signed QR tokens that gates verify offline
            app.include_router(make_member_qr_router(
                lambda tenant: self.keys.get(tenant).signing_key,
                credential_getter(self.engine), link_key))
            from cloud_bridge.driving_school import driving_school_router

            app.include_router(driving_school_router(ctx.engine, ctx.auth,
                                                     publisher=ctx.publisher,
                                                     prefix=ctx.prefix))
        app.add_middleware(ServerTimingMiddleware)
        return app

    # -- dispatch (paho network thread) --------------------------------------------------

    def _dispatch(self, msg: Inbound) -> None:
        (self._sync_q if msg.kind == "members/request" else self._ingest_q).put(msg)

    # -- ingest ---------------------------------------------------------------------

    def _ingest_loop(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._ingest_q.get(timeout=0.2)
            except queue.Empty:
                continue
            msgs = [first]
            events = first.payload.count(b'"seq"') if first.kind == "events" else 0
            while (len(msgs) < self.settings.max_messages_per_tx
                   and events < self.settings.max_events_per_tx):
                try:
                    msg = self._ingest_q.get_nowait()
                except queue.Empty:
                    break
                msgs.append(msg)
                events += msg.payload.count(b'"seq"') if msg.kind == "events" else 0
            try:
                self.process(msgs)
            except Exception:  # the worker must survive anything; messages stay unacked
                log.exception("ingest step failed; %d messages left unacknowledged", len(msgs))

    def process(self, msgs: list[Inbound]) -> None:
        """Validate, commit, then ack (MQTT ack of the events, then PUBACK)."""
        batches: list[tuple[Inbound, EventBatch]] = []
        reports: list[tuple[Inbound, Any]] = []
        done: list[Inbound] = []
        for msg in msgs:
            try:
                if msg.kind == "events":
                    batches.append((msg, parse_events(msg.tenant, msg.device, msg.payload)))
                elif msg.kind == "state":
                    reports.append((msg, parse_small(DeviceState, msg.payload)))
                elif msg.kind == "cmd-result":
                    reports.append((msg, parse_small(CommandResult, msg.payload)))
            except Rejected as exc:
                self._reject(msg, str(exc))
                done.append(msg)
        if batches:
            result = self._commit_events(batches)
            if result is None:
                return  # stopping while the database was away: nothing is acknowledged
            self._publish_after_commit(result)
            done += [m for m, _ in batches]
        if reports and self._retrying(lambda: self._store_reports(reports)) is not None:
            done += [m for m, _ in reports]
        self.stats["messages"] += len(msgs)
        for msg in done:
            self.link.ack(msg)

    def _commit_events(self, batches: list[tuple[Inbound, EventBatch]]) -> IngestResult | None:
        try:
            return self._retrying(lambda: self.ingestor.ingest([b for _, b in batches]))
        except SQLAlchemyError as exc:
            if len(batches) == 1:
                msg = batches[0][0]
                self._reject(msg, f"database refused it: {type(exc.orig or exc).__name__}")
                return IngestResult({})
        # one bad message must not hold up the others: store them one by one
        merged: dict[tuple[str, str], int] = {}
        entries = []
        stored = 0
        for pair in batches:
            one = self._commit_events([pair])
            if one is None:
                return None
            merged.update(one.acks)
            entries += one.entries
            stored += one.events
        return IngestResult(merged, entries, stored)

    def _retrying(self, work: Callable[[], Any]) -> Any:
        """Retry while the database is unreachable or a transaction lost a deadlock;
        other database errors go to the caller. None when stopping."""
        delay = 0.05
        while True:
            try:
                out = work()
                self.stats["transactions"] += 1
                return out
            except (OperationalError, DBAPIError) as exc:
                if not isinstance(exc, OperationalError) and not exc.connection_invalidated:
                    raise
                self.stats["db_retries"] += 1
                log.warning("database unavailable or busy (%s); retrying in %.1f s",
                            type(exc.orig or exc).__name__, delay)
            if self._stop.wait(delay):
                return None
            delay = min(delay * 2, 5.0)

    def _publish_after_commit(self, result: IngestResult) -> None:
        self.stats["events_stored"] += result.events
        prefix = self.settings.mqtt.prefix
        for (tenant, device), acked in result.acks.items():
            self.link.publish(DeviceTopics(prefix, tenant, device).ack,
                              json.dumps({"v": 1, "acked_seq": acked}).encode())
            self.stats["acks_published"] += 1
        for entry in result.entries:
            self.feed.publish(entry)

    def _store_reports(self, reports: list[tuple[Inbound, Any]]) -> bool:
        with write_tx(self.engine) as conn:
            for msg, report in reports:
                if isinstance(report, DeviceState):
                    store_state(conn, msg.tenant, msg.device, report)
                else:
                    store_command_result(conn, msg.tenant, msg.device, report)
        return True

    def _reject(self, msg: Inbound, reason: str) -> None:
        self.stats["rejected"] += 1
        log.warning("rejected %s from %s/%s: %s", msg.kind, msg.tenant, msg.device, reason)

    # -- members sync ----------------------------------------------------------------

    def _sync_loop(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._sync_q.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                request = parse_small(MembersRequest, msg.payload)
                self.member_sync.handle(msg.tenant, msg.device, request)
                self.stats["sync_answers"] += 1
            except Rejected as exc:
                self._reject(msg, str(exc))
            except Exception:
                log.exception("answering members/request of %s/%s failed", msg.tenant,
                              msg.device)
            self.link.ack(msg)

