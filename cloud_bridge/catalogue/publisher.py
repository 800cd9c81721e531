"""Delivers each tenant's newest till catalogue: signed with the tenant's key
(cloud_bridge/catalogue/envelope.py) and retained on ``{prefix}/{tenant}/till/catalogue``
(contracts/topics.py), so a till that is offline gets it when it comes back.

Like the desired device configs: the database is the truth (the web page may write from
another process); this thread compares it every ``refresh_s`` with what this process
last published, and publishes everything again after each new broker connection (a
broker without persistence forgets retained messages when it restarts).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from cloud_bridge.catalogue.envelope import catalogue_envelope
from cloud_bridge.catalogue.store import get_version, latest_versions
from cloud_bridge.db_schema import read_tx
from cloud_bridge.republish_loop import run_republisher
from cloud_bridge.tenant_keys import TenantKeyError, TenantKeyStore
from cloud_bridge.version_advert import RetainedPublisher
from contracts.topics import till_catalogue_topic

log = logging.getLogger(__name__)

REFRESH_S = 1.0
FULL_REFRESH_S = 600.0


class CataloguePublisher:
    def __init__(self, engine: Engine, keys: TenantKeyStore, publisher: RetainedPublisher,
                 prefix: str, *, refresh_s: float = REFRESH_S) -> None:
        self.engine = engine
        self.keys = keys
        self.publisher = publisher
        self.prefix = prefix
        self.refresh_s = refresh_s
        self._published: dict[str, int] = {}

    def refresh(self, *, force: bool = False) -> int:
        """Publish every tenant's newest version this process has not published (every
        one when ``force``); returns how many went out."""
        with read_tx(self.engine) as conn:
            wanted = latest_versions(conn)
        sent = 0
        for tenant, version in sorted(wanted.items()):
            if not force and self._published.get(tenant) == version:
                continue
            if self._publish(tenant, version):
                sent += 1
        return sent

    def _publish(self, tenant: str, version: int) -> bool:
        with read_tx(self.engine) as conn:
            found = get_version(conn, tenant, version)
        if found is None:
            return False
        try:
            keys = self.keys.get(tenant)
        except TenantKeyError as exc:
            log.error("till catalogue %d of %s not sent: %s", version, tenant, exc)
            self._published[tenant] = version  # said once, not every refresh
            return False
        self.publisher.publish(till_catalogue_topic(self.prefix, tenant),
                               catalogue_envelope(keys, version, found.products), retain=True)
        self._published[tenant] = version
        log.info("till catalogue %d of %s published (%d products)", version, tenant,
                 len(found.products))
        return True

    def run(self, stop: threading.Event, generation: Callable[[], int],
            connected: threading.Event) -> None:
        """Thread body: everything after each new broker connection, changes every
        ``refresh_s``."""
        run_republisher(stop, generation, connected, lambda full: self.refresh(force=full),
                        refresh_s=self.refresh_s, full_refresh_s=FULL_REFRESH_S,
                        what="till catalogues")
