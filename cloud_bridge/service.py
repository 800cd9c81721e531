"""One bridge process: the MQTT link, the ingest worker, the members-sync workers and
(optionally) the JSON API, wired together.

The ingest worker takes whatever messages are queued (up to a limit), validates them,
stores them in one transaction, and only after the commit publishes the acks and the
change entries and PUBACKs the messages. A message whose effect is not committed is
never acknowledged at either level, so a bridge can die at any point without loss.

Faults are sorted by cause (cloud_bridge/db_faults.py): a transient one (database away,
lock timeout, serialization failure) retries the same work; a permanent one (the
database refuses a value of one message) is narrowed down to the message, then to the
event, which is refused and kept in the quarantine while everything else is stored.
A message for a tenant the bridge has no keys for is refused (and kept) the same way.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import FastAPI
from sqlalchemy import Engine

from cloud_bridge import quarantine
from cloud_bridge.api import ApiContext, create_app
from cloud_bridge.attendance.alert_sweep import AlertSweep
from cloud_bridge.catalogue.publisher import CataloguePublisher
from cloud_bridge.catalogue.store import ensure_catalogue_schema
from cloud_bridge.change_feed import ChangeFeed
from cloud_bridge.db_faults import cause, is_permanent, is_transient, refusal_reason
from cloud_bridge.db_schema import make_engine, read_tx, write_tx
from cloud_bridge.device_config_publisher import DesiredConfigPublisher
from cloud_bridge.device_configs import ensure_device_config_schema
from cloud_bridge.device_reports import store_command_result, store_state
from cloud_bridge.enrolment_service import mount_enrolment
from cloud_bridge.ingest import Ingestor, IngestResult
from cloud_bridge.member_notice_sweep import MemberNoticeSweep
from cloud_bridge.member_notices import OptoutLinks
from cloud_bridge.member_qr_links import load_link_key
from cloud_bridge.member_sync import DEFAULT_MAX_LAG, MemberSync
from cloud_bridge.metrics import BridgeMetrics, mount_metrics
from cloud_bridge.mqtt_link import BridgeLink, MqttSettings
from cloud_bridge.notifications import Notifier, mailer_from_url, sms_from_url
from cloud_bridge.quarantine import Refusal
from cloud_bridge.snapshot import DEFAULT_CHUNK_ROWS
from cloud_bridge.tenant_keys import TenantKeyStore
from cloud_bridge.version_advert import VersionAdvertiser
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
    SplitEvents,
    parse_small,
    split_events,
)
from contracts.command_expiry import CommandLifetimes
from contracts.topics import DeviceTopics

if TYPE_CHECKING:
    from cloud_bridge.jetstream_link import JetStreamLink, JetStreamSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


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
    # per-tenant device CAs and broker endpoints for enrolment codes (enrolment_service)
    ca_dir: Path | None = None
    # seconds a device command stays valid: physical actions, printing, the rest
    command_lifetimes: CommandLifetimes = field(default_factory=CommandLifetimes)
    # set: take the uplink from a NATS JetStream cluster instead of MQTT (docs/scale.md)
    jetstream: JetStreamSettings | None = None
    # e-mail and SMS to people (cloud_bridge/notifications): smtp[s]://... and
    # file:///... or https://...; None = notices wait in the outbox until configured
    mail_url: str | None = None
    sms_url: str | None = None
    # s between two checks of the working-time alerts (attendance/alert_sweep.py); 0 = off
    alert_sweep_s: float = 3600.0
    # s between two checks for expiring memberships and low punch cards
    # (member_notice_sweep.py); 0 = off
    member_notice_sweep_s: float = 3600.0
    # the bridge's address as members reach it: notices link the opt-out page there
    public_url: str | None = None


class Bridge:
    def __init__(self, settings: BridgeSettings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.db_url)
        self.keys = TenantKeyStore(settings.keys_dir)
        self.link: BridgeLink | JetStreamLink
        if settings.jetstream is not None:
            from cloud_bridge.jetstream_link import JetStreamLink  # nats-py only if used

            self.link = JetStreamLink(settings.jetstream, self._dispatch)
        else:
            self.link = BridgeLink(settings.mqtt, self._dispatch)
        prefix = settings.mqtt.prefix
        self.versions = VersionAdvertiser(self.engine, self.keys, self.link, prefix)
        ensure_device_config_schema(self.engine)
        self.desired_configs = DesiredConfigPublisher(self.engine, self.keys, self.link, prefix)
        ensure_catalogue_schema(self.engine)
        self.catalogues = CataloguePublisher(self.engine, self.keys, self.link, prefix)
        self.feed = ChangeFeed(self.keys, self.link, prefix, self.versions)
        self.member_sync = MemberSync(self.engine, self.keys, self.link, prefix,
                                      max_lag=settings.max_lag, chunk_rows=settings.chunk_rows)
        self.ingestor = Ingestor(self.engine)
        self.notifier = Notifier(
            self.engine, mailer_from_url(settings.mail_url) if settings.mail_url else None,
            sms_from_url(settings.sms_url) if settings.sms_url else None)
        self.alert_sweep = AlertSweep(self.engine, self.notifier,
                                      interval_s=settings.alert_sweep_s)
        self.member_notices = MemberNoticeSweep(
            self.engine, self.notifier, interval_s=settings.member_notice_sweep_s,
            links=OptoutLinks(settings.public_url, load_link_key(settings.keys_dir))
            if settings.public_url else None)
        self._ingest_q: queue.Queue[Inbound] = queue.Queue()
        self._sync_q: queue.Queue[Inbound] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.stats = {"events_stored": 0, "messages": 0, "transactions": 0, "rejected": 0,
                      "quarantined": 0, "acks_published": 0, "db_retries": 0,
                      "sync_answers": 0}
        self.metrics = BridgeMetrics()
        self.metrics.watch_quarantine(self._quarantine_rows)

    # -- lifecycle -------------------------------------------------------------------

    def start(self, wait_connected_s: float = 10.0) -> Bridge:
        self._threads = [threading.Thread(target=self._ingest_loop, name="ingest", daemon=True)]
        self._threads += [threading.Thread(target=self._sync_loop, name=f"members-sync-{i}",
                                           daemon=True)
                          for i in range(self.settings.sync_workers)]
        self._threads.append(threading.Thread(
            target=self.versions.run, name="members-version",
            args=(self._stop, lambda: self.link.generation, self.link.connected), daemon=True))
        self._threads.append(threading.Thread(
            target=self.desired_configs.run, name="desired-configs",
            args=(self._stop, lambda: self.link.generation, self.link.connected), daemon=True))
        self._threads.append(threading.Thread(
            target=self.catalogues.run, name="till-catalogues",
            args=(self._stop, lambda: self.link.generation, self.link.connected), daemon=True))
        for t in self._threads:
            t.start()
        self.notifier.start()
        if self.settings.alert_sweep_s > 0:
            self.alert_sweep.start()
        if self.settings.member_notice_sweep_s > 0:
            self.member_notices.start()
        self.link.start(wait_s=wait_connected_s)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)
        self.alert_sweep.stop()
        self.member_notices.stop()
        self.notifier.stop()
        self.link.stop()

    def api_context(self, api_token: str | None) -> ApiContext:
        return ApiContext(self.engine, self.keys, self.feed, self.link,
                          self.settings.mqtt.prefix, api_token,
                          command_lifetimes=self.settings.command_lifetimes)

    def app(self, api_token: str | None, *, web: bool = True,
            secure_cookies: bool = True) -> FastAPI:
        """The JSON API and, unless ``web`` is off, the staff web modules beside it."""
        app = create_app(self.api_context(api_token))
        mount_metrics(app, self.metrics, token=api_token)
        ctx = self._mount_staff_web(app, secure_cookies) if web else None
        mount_enrolment(app, self.engine, self.keys, self.settings.ca_dir, api_token, web=ctx)
        app.add_middleware(ServerTimingMiddleware)
        return app

    def _mount_staff_web(self, app: FastAPI, secure_cookies: bool) -> WebContext:
        """The staff web modules, the members' phone page and the driving school."""
        from cloud_bridge.driving_school import driving_school_router
        from cloud_bridge.driving_school.apply_limits import ApplyLimits
        from cloud_bridge.member_qr import make_member_qr_router
        from cloud_bridge.member_qr_links import credential_getter
        from cloud_bridge.notice_optout_page import make_notice_optout_router
        from cloud_bridge.phone_enrolment import PhoneKeyDesk
        from cloud_bridge.waivers import WaiverDesk

        link_key = load_link_key(self.settings.keys_dir)
        ctx = WebContext(self.engine, self.keys, self.feed, self.link,
                         self.settings.mqtt.prefix,
                         WebAuth(self.engine, secure_cookies=secure_cookies), link_key,
                         command_lifetimes=self.settings.command_lifetimes,
                         notifier=self.notifier)
        mount_web(app, ctx)
        # the members' phone page: signed QR tokens that gates verify offline
        app.include_router(make_member_qr_router(
            lambda tenant: self.keys.get(tenant).signing_key,
            credential_getter(self.engine), link_key,
            waivers=WaiverDesk(self.engine, self.feed.publish),
            phones=PhoneKeyDesk(self.engine, lambda tenant: self.keys.get(tenant).hmac_key,
                                self.feed.publish)))
        # the member's own page to stop or restore notices (linked from every e-mail)
        app.include_router(make_notice_optout_router(self.engine, link_key))
        app.include_router(driving_school_router(ctx.engine, ctx.auth,
                                                 publisher=ctx.publisher,
                                                 prefix=ctx.prefix,
                                                 command_lifetimes=ctx.command_lifetimes,
                                                 notifier=ctx.notifier,
                                                 apply_limits=ApplyLimits.for_server_key(
                                                     link_key)))
        return ctx

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
        batches: list[tuple[Inbound, SplitEvents]] = []
        reports: list[tuple[Inbound, Any]] = []
        refused: list[Refusal] = []
        done: list[Inbound] = []
        for msg in msgs:
            try:
                if msg.kind in ("events", "state", "cmd-result") and not self.keys.exists(
                        msg.tenant):
                    raise Rejected(f"unknown tenant {msg.tenant[:64]!r}: no keys on this bridge")
                if msg.kind == "events":
                    batches.append((msg, split_events(msg.tenant, msg.device, msg.payload)))
                elif msg.kind == "state":
                    reports.append((msg, parse_small(DeviceState, msg.payload)))
                elif msg.kind == "cmd-result":
                    reports.append((msg, parse_small(CommandResult, msg.payload)))
            except Rejected as exc:
                refused.append(self._reject(msg, str(exc)))
                done.append(msg)
        if batches:
            result = self._commit_events(batches)
            if result is None:
                return  # stopping while the database was away: nothing is acknowledged
            self._publish_after_commit(result)
            done += [m for m, _ in batches]
        if reports:
            if not self._commit_reports(reports):
                return
            done += [m for m, _ in reports]
        if refused and not self._keep(refused):
            return
        self.stats["messages"] += len(msgs)
        for msg in done:
            self.link.ack(msg)

    def _event_refusals(self, msg: Inbound, split: SplitEvents) -> list[Refusal]:
        return [Refusal(msg.tenant, msg.device, "events", r.reason, r.raw, r.seq, r.event_id,
                        settles=True) for r in split.refused]

    def _commit_events(self, batches: list[tuple[Inbound, SplitEvents]]) -> IngestResult | None:
        """Store the batches in one transaction; when the database refuses one of them for
        good, store them one by one, and a refused one event by event."""
        refusals = [r for msg, split in batches for r in self._event_refusals(msg, split)]
        try:
            return self._retrying(lambda: self.ingestor.ingest(
                [split.batch for _, split in batches], refusals))
        except Exception as exc:
            if not is_permanent(exc):
                raise
            log.warning("database refused a transaction of %d messages (%s): narrowing down",
                        len(batches), cause(exc))
        if len(batches) == 1:
            return self._commit_event_by_event(*batches[0])
        parts = []
        for pair in batches:
            one = self._commit_events([pair])
            if one is None:
                return None
            parts.append(one)
        return _merge(parts)

    def _commit_event_by_event(self, msg: Inbound, split: SplitEvents) -> IngestResult | None:
        parts: list[IngestResult] = []
        refusals = self._event_refusals(msg, split)
        for ev in split.batch.events:
            one_batch = EventBatch.model_construct(v=1, tenant=msg.tenant, device=msg.device,
                                                   events=[ev])
            try:
                one = self._retrying(partial(self.ingestor.ingest, [one_batch]))
            except Exception as exc:
                if not is_permanent(exc):
                    raise
                refusals.append(Refusal(msg.tenant, msg.device, "events", refusal_reason(exc),
                                        ev.model_dump_json().encode(), ev.seq, ev.id,
                                        settles=True))
                continue
            if one is None:
                return None
            parts.append(one)
        if refusals:
            kept = self._retrying(lambda: self.ingestor.ingest([], refusals))
            if kept is None:
                return None
            parts.append(kept)
        return _merge(parts)

    def _commit_reports(self, reports: list[tuple[Inbound, Any]]) -> bool:
        """Store state and command results; one the database refuses is kept aside."""
        try:
            return self._retrying(lambda: self._store_reports(reports)) is not None
        except Exception as exc:
            if not is_permanent(exc):
                raise
            if len(reports) > 1:
                return all(self._commit_reports([r]) for r in reports)
            msg = reports[0][0]
            return self._keep([self._reject(msg, refusal_reason(exc))])

    def _keep(self, refusals: list[Refusal]) -> bool:
        """Quarantine whole messages refused before any storing; False when stopping."""
        try:
            return self._retrying(lambda: self.ingestor.ingest([], refusals)) is not None
        except Exception as exc:
            if not is_permanent(exc):
                raise
            log.error("could not quarantine %d refused messages (%s); dropped",
                      len(refusals), cause(exc))
            return True

    def _retrying(self, work: Callable[[], T]) -> T | None:
        """Retry while the fault is transient (db_faults); a permanent one goes to the
        caller. None when stopping."""
        delay = 0.05
        while True:
            try:
                out = work()
                self.stats["transactions"] += 1
                return out
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.stats["db_retries"] += 1
                log.warning("database unavailable or busy (%s); retrying in %.1f s",
                            cause(exc), delay)
            if self._stop.wait(delay):
                return None
            delay = min(delay * 2, 5.0)

    def _publish_after_commit(self, result: IngestResult) -> None:
        self.stats["events_stored"] += result.events
        for r in result.refused:
            self.stats["quarantined"] += 1
            self.metrics.refused.labels(r.kind).inc()
            log.warning("quarantined event %s/%s seq %s: %s", r.tenant, r.device, r.seq,
                        r.reason)
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

    def _reject(self, msg: Inbound, reason: str) -> Refusal:
        self.stats["rejected"] += 1
        self.stats["quarantined"] += 1
        self.metrics.refused.labels(msg.kind).inc()
        log.warning("rejected %s from %s/%s: %s", msg.kind, msg.tenant[:64], msg.device[:64],
                    reason)
        return Refusal(msg.tenant, msg.device, msg.kind, reason, msg.payload)

    def _quarantine_rows(self) -> float:
        try:
            with read_tx(self.engine) as conn:
                return float(quarantine.count(conn))
        except Exception:  # a scrape must not fail because the database is away
            log.warning("could not count the quarantine", exc_info=True)
            return float("nan")

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
                self._keep([self._reject(msg, str(exc))])
            except Exception:
                log.exception("answering members/request of %s/%s failed", msg.tenant,
                              msg.device)
            self.link.ack(msg)



def _merge(parts: list[IngestResult]) -> IngestResult:
    acks: dict[tuple[str, str], int] = {}
    for part in parts:
        for key, seq in part.acks.items():
            acks[key] = max(acks.get(key, 0), seq)
    return IngestResult(acks, [e for p in parts for e in p.entries],
                        sum(p.events for p in parts), [r for p in parts for r in p.refused])
