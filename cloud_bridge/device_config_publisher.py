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
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from cloud_bridge.db_schema import read_tx
from cloud_bridge.device_configs import get_desired, latest_versions
from cloud_bridge.republish_loop import run_republisher
from cloud_bridge.tenant_keys import TenantKeyError, TenantKeyStore
from cloud_bridge.version_advert import RetainedPublisher
from contracts.remote_config import desired_payload
from contracts.signed_envelope import sign_payload
from contracts.topics import device_config_topic

log = logging.getLogger(__name__)

REFRESH_S = 2.0


class DesiredConfigPublisher:
    def __init__(self, engine: Engine, keys: TenantKeyStore, publisher: RetainedPublisher,
                 prefix: str, *, refresh_s: float = REFRESH_S) -> None:
        self.engine = engine
        self.keys = keys
        self.publisher = publisher
        self.prefix = prefix
        self.refresh_s = refresh_s
        self._published: dict[tuple[str, str], int] = {}

    def refresh(self, *, force: bool = False) -> int:
        """Publish every device's newest version that this process has not published
        (every one when ``force``); returns how many went out."""
        with read_tx(self.engine) as conn:
            wanted = latest_versions(conn)
        sent = 0
        for (tenant, device), version in sorted(wanted.items()):
            if not force and self._published.get((tenant, device)) == version:
                continue
            if self._publish(tenant, device, version):
                sent += 1
        return sent

    def _publish(self, tenant: str, device: str, version: int) -> bool:
        with read_tx(self.engine) as conn:
            desired = get_desired(conn, tenant, device, version)
        if desired is None:
            return False
        try:
            signing_key = self.keys.get(tenant).signing_key
        except TenantKeyError as exc:
            log.error("desired config %d of %s/%s not sent: %s", version, tenant, device, exc)
            self._published[(tenant, device)] = version  # said once, not every refresh
            return False
        payload = sign_payload(signing_key, desired_payload(
            tenant, device, version, desired.created_ms, desired.config))
        self.publisher.publish(device_config_topic(self.prefix, tenant, device), payload,
                               retain=True)
        self._published[(tenant, device)] = version
        log.info("desired config %d of %s/%s published", version, tenant, device)
        return True

    def run(self, stop: threading.Event, generation: Callable[[], int],
            connected: threading.Event) -> None:
        """Thread body: everything after each new broker connection, changes every
        ``refresh_s``."""
        run_republisher(stop, generation, connected, lambda full: self.refresh(force=full),
                        refresh_s=self.refresh_s, what="desired configs")
