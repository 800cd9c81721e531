"""The tenant's till catalogue from the bridge, as the MQTT link delivers it: a signed,
retained message on ``{prefix}/{tenant}/till/catalogue`` (docs/protocol.md).

Each message goes through the till's own check (agent/till/catalogue.py: the tenant's
signature, this tenant, a newer version, then the file is replaced atomically and the
till sells on the new version). The same version again (the retained message after each
reconnect) is ignored; anything refused (forged, another tenant's, older, malformed) is
logged and reported in the device's state, and the till keeps selling on the version it
has. Without a broker nothing arrives and the till sells on its last version.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from agent.errors import ConfigError
from agent.till.catalogue import StaleCatalogue
from agent.till.till import Till
from contracts.till_catalogue import MAX_CATALOGUE_BYTES

log = logging.getLogger(__name__)


class CatalogueFeed:
    def __init__(self, till: Till) -> None:
        self.till = till
        self.on_change: Callable[[], None] = lambda: None  # the link publishes the state
        self._lock = threading.Lock()
        self._rejected: str | None = None
        self._updated_ms: int | None = None

    def offer(self, payload: bytes) -> None:
        """A message on the catalogue topic (the link's thread)."""
        if not payload:
            return  # the retained message was cleared: keep selling on what we have
        try:
            if len(payload) > MAX_CATALOGUE_BYTES:
                raise ConfigError(f"till catalogue of {len(payload)} bytes refused: over "
                                  f"the {MAX_CATALOGUE_BYTES} limit")
            version = self.till.update_catalogue(payload)
        except StaleCatalogue as exc:
            if exc.version == exc.current:
                return  # the retained copy of the version the till sells on
            self._refused(str(exc))
            return
        except ConfigError as exc:
            self._refused(str(exc))
            return
        with self._lock:
            self._rejected = None
            self._updated_ms = int(time.time() * 1000)
        log.info("till catalogue version %d installed from the bridge", version)
        self.on_change()

    def _refused(self, reason: str) -> None:
        reason = reason.splitlines()[0][:500]
        with self._lock:
            self._rejected = reason
        log.warning("%s; the till keeps selling on version %d", reason,
                    self.till.catalogue.version)
        self.on_change()

    def status(self) -> dict[str, Any]:
        """What the state message reports: the version sold on and the last refusal."""
        with self._lock:
            return {"version": self.till.catalogue.version, "updated_ms": self._updated_ms,
                    "rejected": self._rejected}
