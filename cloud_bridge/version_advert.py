"""Advertises each tenant's membership version where its devices can see it: a signed,
retained message on ``es/v1/{tenant}/members/version`` (docs/protocol.md, "Catch-up").

A device that is behind the advertised version asks again, with backoff, until it has
caught up; so a ``members/request`` lost on the way (an agent back on a restarted broker
before the bridges have subscribed again) costs seconds, not the wait for the next
change. Published after each committed change, on every (re)connect of the bridge (a
broker without persistence forgets retained messages when it restarts), and by a
periodic check of the database, which also repairs the rare case of two bridge
processes publishing their versions out of order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import Engine, select

from cloud_bridge.db_schema import read_tx, tenants
from cloud_bridge.republish_loop import run_republisher
from cloud_bridge.tenant_keys import TenantKeyError, TenantKeyStore
from contracts.signed_envelope import sign_payload
from contracts.topics import tenant_version_topic

log = logging.getLogger(__name__)

REFRESH_S = 15.0  # how often the database is compared with what was advertised
FULL_REFRESH_S = 600.0  # every tenant again, even unchanged (another bridge may differ)


class RetainedPublisher(Protocol):
    def publish(self, topic: str, payload: bytes, retain: bool = False) -> Any: ...


class VersionAdvertiser:
    def __init__(self, engine: Engine, keys: TenantKeyStore, publisher: RetainedPublisher,
                 prefix: str, *, refresh_s: float = REFRESH_S,
                 full_refresh_s: float = FULL_REFRESH_S) -> None:
        self.engine = engine
        self.keys = keys
        self.publisher = publisher
        self.prefix = prefix
        self.refresh_s = refresh_s
        self.full_refresh_s = full_refresh_s
        self._published: dict[str, int] = {}
        self._lock = threading.Lock()

    def advertise(self, tenant: str, version: int, *, force: bool = False) -> bool:
        """Publish ``version`` unless this process already advertised it or a newer one."""
        with self._lock:
            if not force and self._published.get(tenant, -1) >= version:
                return False
            try:
                signing_key = self.keys.get(tenant).signing_key
            except TenantKeyError as exc:
                log.error("membership version of %s not advertised: %s", tenant, exc)
                # said once per version, not at every refresh
                self._published[tenant] = max(version, self._published.get(tenant, -1))
                return False
            payload = sign_payload(signing_key, {"v": 1, "tenant": tenant, "kind": "version",
                                                 "version": version})
            self.publisher.publish(tenant_version_topic(self.prefix, tenant), payload,
                                   retain=True)
            self._published[tenant] = max(version, self._published.get(tenant, -1))
        return True

    def refresh(self, *, force: bool = False) -> int:
        """Advertise the database's version of every tenant that differs from what this
        process last advertised (every tenant when ``force``); returns how many."""
        with read_tx(self.engine) as conn:
            rows = conn.execute(select(tenants.c.tenant, tenants.c.version)).all()
        sent = 0
        for tenant, version in rows:
            with self._lock:
                same = self._published.get(tenant) == int(version)
            if (force or not same) and self.advertise(tenant, int(version), force=True):
                sent += 1
        return sent

    def run(self, stop: threading.Event, generation: Callable[[], int],
            connected: threading.Event) -> None:
        """Thread body: everything again after each new broker connection, the changed
        ones every ``refresh_s``."""
        run_republisher(stop, generation, connected, self._refresh_and_log,
                        refresh_s=self.refresh_s, full_refresh_s=self.full_refresh_s,
                        what="membership versions")

    def _refresh_and_log(self, full: bool) -> None:
        if sent := self.refresh(force=full):
            log.info("advertised the membership version of %d tenants", sent)
