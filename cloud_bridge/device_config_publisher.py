"""Delivers desired device configs: each device's newest version, signed with its
tenant's key, retained on ``{prefix}/{tenant}/{device}/config/desired`` (contracts/topics.py)
so a device that is offline gets it when it comes back.

The database is the truth (the API, the web page and ``cloud-bridge device-config set``
write there, possibly from other processes): this thread compares it every
``refresh_s`` with what this process last published, and publishes everything again
after each new broker connection (a broker without persistence forgets retained
messages when it restarts).
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Engine

from cloud_bridge.db_schema import read_tx
from cloud_bridge.device_configs import get_desired, latest_versions
from cloud_bridge.republish_loop import VersionRepublisher
from cloud_bridge.tenant_keys import TenantKeyStore
from cloud_bridge.version_advert import RetainedPublisher
from contracts.remote_config import desired_payload
from contracts.signed_envelope import sign_payload
from contracts.topics import device_config_topic

log = logging.getLogger(__name__)

REFRESH_S = 2.0


class DesiredConfigPublisher(VersionRepublisher[tuple[str, str]]):
    what = "desired config"

    def __init__(self, engine: Engine, keys: TenantKeyStore, publisher: RetainedPublisher,
                 prefix: str, *, refresh_s: float = REFRESH_S) -> None:
        super().__init__(engine, refresh_s)
        self.keys = keys
        self.publisher = publisher
        self.prefix = prefix

    def latest(self, conn: Connection) -> dict[tuple[str, str], int]:
        return latest_versions(conn)

    def label(self, key: tuple[str, str]) -> str:
        return "/".join(key)

    def send(self, key: tuple[str, str], version: int) -> bool:
        tenant, device = key
        with read_tx(self.engine) as conn:
            desired = get_desired(conn, tenant, device, version)
        if desired is None:
            return False
        signing_key = self.keys.get(tenant).signing_key  # TenantKeyError: the base says it
        payload = sign_payload(signing_key, desired_payload(
            tenant, device, version, desired.created_ms, desired.config))
        self.publisher.publish(device_config_topic(self.prefix, tenant, device), payload,
                               retain=True)
        log.info("desired config %d of %s/%s published", version, tenant, device)
        return True
