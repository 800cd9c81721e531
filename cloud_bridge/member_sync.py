"""Answers a device's ``members/request``: the change batches it is missing, or a
snapshot when it is too far behind (``max_lag`` versions) or the log was pruned below
its version. Answers go to that device only, on ``…/{device}/members/sync``."""

from __future__ import annotations

import enum
import json
import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from cloud_bridge import change_log
from cloud_bridge.change_feed import Publisher, changes_envelope
from cloud_bridge.db_schema import read_tx
from cloud_bridge.snapshot import DEFAULT_CHUNK_ROWS, snapshot_envelopes
from cloud_bridge.tenant_keys import TenantKeyError, TenantKeyStore
from cloud_bridge.wire import MembersRequest
from contracts.topics import DeviceTopics

log = logging.getLogger(__name__)

DEFAULT_MAX_LAG = 1000
MAX_BATCH_CHANGES = 2000  # change records per answered batch (whole log entries each)
PUBLISH_WINDOW = 8  # snapshot chunks in flight before waiting for the broker
PUBLISH_TIMEOUT_S = 60.0


class Answer(enum.StrEnum):
    UP_TO_DATE = "up-to-date"
    CHANGES = "changes"
    SNAPSHOT = "snapshot"
    AHEAD = "ahead"  # the device claims a version we never issued
    BUSY = "busy"  # an answer to this device is being sent already
    NO_KEYS = "no-keys"


@dataclass(frozen=True, slots=True)
class SyncResult:
    answer: Answer
    messages: int = 0
    version: int = 0


class MemberSync:
    def __init__(self, engine: Engine, keys: TenantKeyStore, publisher: Publisher, prefix: str,
                 *, max_lag: int = DEFAULT_MAX_LAG, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        self.engine = engine
        self.keys = keys
        self.publisher = publisher
        self.prefix = prefix
        self.max_lag = max_lag
        self.chunk_rows = chunk_rows
        self._busy: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def handle(self, tenant: str, device: str, request: MembersRequest) -> SyncResult:
        key = (tenant, device)
        with self._lock:
            if key in self._busy:
                return SyncResult(Answer.BUSY)
            self._busy.add(key)
        try:
            return self._answer(tenant, device, request.since_version)
        except TenantKeyError as exc:
            log.error("cannot answer %s/%s: %s", tenant, device, exc)
            return SyncResult(Answer.NO_KEYS)
        finally:
            with self._lock:
                self._busy.discard(key)

    def _answer(self, tenant: str, device: str, since: int) -> SyncResult:
        topic = DeviceTopics(self.prefix, tenant, device).members_sync
        keys = self.keys.get(tenant)
        with read_tx(self.engine) as conn:
            state = change_log.state(conn, tenant)
            if since == state.version:
                return SyncResult(Answer.UP_TO_DATE, 0, state.version)
            if since > state.version:
                log.error("device %s/%s has membership version %d but the bridge is at %d: "
                          "was the bridge database restored from an older backup? Reset the "
                          "device's membership data (edge-agent) to resynchronise",
                          tenant, device, since, state.version)
                return SyncResult(Answer.AHEAD, 0, state.version)
            entries: list[tuple[int, str]] = []
            if since >= state.log_floor and state.version - since <= self.max_lag:
                entries = list(change_log.entries(conn, tenant, since, state.version))
        if len(entries) == state.version - since:
            sent = self._send_changes(keys, topic, since, entries)
            log.info("answered %s/%s from v%d with %d change batches up to v%d", tenant,
                     device, since, sent, state.version)
            return SyncResult(Answer.CHANGES, sent, state.version)
        sent, version = self._send_snapshot(keys, topic)
        log.info("answered %s/%s (at v%d) with a snapshot of v%d in %d chunks", tenant, device,
                 since, version, sent)
        return SyncResult(Answer.SNAPSHOT, sent, version)

    def _send_changes(self, keys: Any, topic: str, since: int,
                      entries: list[tuple[int, str]]) -> int:
        sent = 0
        start = since
        pending: list[dict[str, Any]] = []
        last = since
        for version, text in entries:
            changes = json.loads(text)
            if pending and len(pending) + len(changes) > MAX_BATCH_CHANGES:
                self.publisher.publish(topic, changes_envelope(
                    self.keys, keys.tenant, start, last, pending))
                sent += 1
                start, pending = last, []
            pending.extend(changes)
            last = version
        if last > start:
            self.publisher.publish(topic, changes_envelope(
                self.keys, keys.tenant, start, last, pending))
            sent += 1
        return sent

    def _send_snapshot(self, keys: Any, topic: str) -> tuple[int, int]:
        inflight: deque[Any] = deque()
        sent = version = 0
        for chunk in snapshot_envelopes(self.engine, keys, self.chunk_rows):
            inflight.append(self.publisher.publish(topic, chunk.envelope))
            sent, version = sent + 1, chunk.version
            while len(inflight) > PUBLISH_WINDOW:
                _wait(inflight.popleft())
        while inflight:
            _wait(inflight.popleft())
        return sent, version


def _wait(info: Any) -> None:
    """Bound memory: a snapshot of 500 chunks must not sit in paho's queue at once."""
    if info is not None and hasattr(info, "wait_for_publish"):
        info.wait_for_publish(PUBLISH_TIMEOUT_S)
