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

from sqlalchemy import Connection, Engine

from cloud_bridge.catalogue.envelope import catalogue_envelope
from cloud_bridge.catalogue.store import get_version, latest_versions
from cloud_bridge.db_schema import read_tx
from cloud_bridge.republish_loop import VersionRepublisher
from cloud_bridge.tenant_keys import TenantKeyStore
from cloud_bridge.version_advert import RetainedPublisher
from contracts.topics import till_catalogue_topic

log = logging.getLogger(__name__)

REFRESH_S = 1.0
FULL_REFRESH_S = 600.0


class CataloguePublisher(VersionRepublisher[str]):
    what = "till catalogue"
    full_refresh_s = FULL_REFRESH_S

    def __init__(self, engine: Engine, keys: TenantKeyStore, publisher: RetainedPublisher,
                 prefix: str, *, refresh_s: float = REFRESH_S) -> None:
        super().__init__(engine, refresh_s)
        self.keys = keys
        self.publisher = publisher
        self.prefix = prefix

    def latest(self, conn: Connection) -> dict[str, int]:
        return latest_versions(conn)

    def send(self, tenant: str, version: int) -> bool:
        with read_tx(self.engine) as conn:
            found = get_version(conn, tenant, version)
        if found is None:
            return False
        keys = self.keys.get(tenant)  # TenantKeyError: said once by the base class
        self.publisher.publish(till_catalogue_topic(self.prefix, tenant),
                               catalogue_envelope(keys, version, found.products), retain=True)
        log.info("till catalogue %d of %s published (%d products)", version, tenant,
                 len(found.products))
        return True
