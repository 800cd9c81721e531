"""The thread body of a bridge publisher of retained state (membership versions, desired
device configs, till catalogues): everything again after each new broker connection and
every ``full_refresh_s``, what changed every ``refresh_s``; a database fault retries in
1 s. ``VersionRepublisher`` is the part the versioned ones share."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from cloud_bridge.db_schema import read_tx
from cloud_bridge.tenant_keys import TenantKeyError

log = logging.getLogger(__name__)


def run_republisher(stop: threading.Event, generation: Callable[[], int],
                    connected: threading.Event, refresh: Callable[[bool], object], *,
                    refresh_s: float, full_refresh_s: float = math.inf,
                    what: str) -> None:
    """``refresh(force)`` publishes what differs from the last publication (everything
    when ``force``); ``generation()`` changes with every new broker connection."""
    seen_generation = -1
    next_refresh = next_full = time.monotonic()
    while not stop.wait(0.2):
        if not connected.is_set():
            continue
        now = time.monotonic()
        current = generation()
        new_connection = current != seen_generation
        if not (new_connection or now >= next_refresh):
            continue
        full = new_connection or now >= next_full
        try:
            refresh(full)
        except SQLAlchemyError as exc:
            log.warning("%s not published (database: %s); retrying", what,
                        type(exc).__name__)
            next_refresh = now + 1.0
            continue
        seen_generation = current
        next_refresh = now + refresh_s
        if full:
            next_full = now + full_refresh_s


K = TypeVar("K", bound=Hashable)


class VersionRepublisher(Generic[K]):
    """Publishes, retained, the newest version of each key (a tenant, a device) that this
    process has not published yet; a subclass says what the newest versions are
    (``latest``) and how one is sent (``send``). The database is the truth (pages and
    CLIs may write it from other processes); ``run`` is the thread body."""

    what = "retained state"  # for the logs
    full_refresh_s = math.inf

    def __init__(self, engine: Engine, refresh_s: float) -> None:
        self.engine = engine
        self.refresh_s = refresh_s
        self._published: dict[K, int] = {}

    def latest(self, conn: Connection) -> dict[K, int]:
        raise NotImplementedError

    def label(self, key: K) -> str:
        """How the logs name ``key``."""
        return str(key)

    def send(self, key: K, version: int) -> bool:
        """Publish ``version`` of ``key``; False when it is not there (nothing sent)."""
        raise NotImplementedError

    def refresh(self, *, force: bool = False) -> int:
        """Publish every key's newest version this process has not published (every one
        when ``force``); returns how many went out."""
        with read_tx(self.engine) as conn:
            wanted = self.latest(conn)
        sent = 0
        for key, version in sorted(wanted.items()):
            if not force and self._published.get(key) == version:
                continue
            if self._publish(key, version):
                sent += 1
        return sent

    def _publish(self, key: K, version: int) -> bool:
        try:
            sent = self.send(key, version)
        except TenantKeyError as exc:
            log.error("%s %d of %s not sent: %s", self.what, version, self.label(key), exc)
            self._published[key] = version  # said once, not every refresh
            return False
        if sent:
            self._published[key] = version
        return sent

    def run(self, stop: threading.Event, generation: Callable[[], int],
            connected: threading.Event) -> None:
        """Thread body: everything after each new broker connection, changes every
        ``refresh_s``."""
        run_republisher(stop, generation, connected, lambda full: self.refresh(force=full),
                        refresh_s=self.refresh_s, full_refresh_s=self.full_refresh_s,
                        what=self.what)
