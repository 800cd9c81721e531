"""Signs change batches with the tenant's Ed25519 key and publishes them (after commit).

A batch that is lost on the way (a bridge dying between commit and publish, a device
offline) is not lost for the device: the next batch it sees shows a gap, or it asks on
reconnect, and :mod:`cloud_bridge.member_sync` answers from the log.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from cloud_bridge.change_log import Entry
from cloud_bridge.tenant_keys import TenantKeyError, TenantKeyStore
from cloud_bridge.version_advert import VersionAdvertiser
from contracts.signed_envelope import sign_payload
from contracts.topics import tenant_changes_topic

log = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes) -> Any: ...


def changes_envelope(keys: TenantKeyStore, tenant: str, from_version: int, to_version: int,
                     changes: list[dict[str, Any]]) -> bytes:
    return sign_payload(keys.get(tenant).signing_key, {
        "v": 1, "tenant": tenant, "kind": "changes", "from_version": from_version,
        "to_version": to_version, "changes": changes})


class ChangeFeed:
    def __init__(self, keys: TenantKeyStore, publisher: Publisher, prefix: str,
                 versions: VersionAdvertiser | None = None) -> None:
        self.keys = keys
        self.publisher = publisher
        self.prefix = prefix
        self.versions = versions  # the retained members/version advert, when wired

    def publish(self, entry: Entry) -> None:
        """Publish one committed entry on the tenant's members/changes topic."""
        try:
            payload = changes_envelope(self.keys, entry.tenant, entry.version - 1,
                                       entry.version, entry.changes)
        except TenantKeyError as exc:
            log.error("change %s/v%d not published: %s", entry.tenant, entry.version, exc)
            return
        self.publisher.publish(tenant_changes_topic(self.prefix, entry.tenant), payload)
        if self.versions is not None:
            self.versions.advertise(entry.tenant, entry.version)
        log.info("published change %s v%d (%d records)", entry.tenant, entry.version,
                 len(entry.changes))
