"""Presence shared between the devices of one site (docs/multi_gate.md).

Each device keeps the whole site's presence in its own ``presence`` table, so its
anti-passback and occupancy decisions stay local and take no network round trip. Its
own grants go out to the peers as signed facts (sync/site_link.py) after the tap's
transaction committed; a peer's facts are applied last-writer-wins by the time of the
passage. A peer's row carries the gate as ``device:gate``, so it never looks like one
of this device's own gates.

On every (re)connect to the site broker the device republishes its own facts of the
presence window: a peer that missed them (it was cut off, or restarted with a new
session) catches up, and applying a fact twice changes nothing.

While the device is cut off (the site broker or a configured peer unreachable) the
fallback rule applies: an earlier passage blocks a pass-back only within
``cut_off_passback_s`` (a member who left through an unreachable gate can come back
later; a card handed back over the barrier is still refused).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from agent.access.service import AccessService
from agent.config import AgentConfig
from agent.store.local_store import LocalStore
from contracts.site_presence import PresenceFact, presence_key
from sync.mqtt_client import BrokerSettings
from sync.site_link import SiteLink, SiteLinkSettings

Clock = Callable[[], datetime]

log = logging.getLogger(__name__)

_APPLY = (
    "INSERT INTO presence(member_id, direction, at_ms, gate) VALUES (?, ?, ?, ?) "
    "ON CONFLICT(member_id) DO UPDATE SET direction = excluded.direction, "
    "at_ms = excluded.at_ms, gate = excluded.gate WHERE excluded.at_ms > presence.at_ms"
)


def peer_gate(fact: PresenceFact) -> str:
    return f"{fact.device}:{fact.gate}"


def apply_fact(store: LocalStore, fact: PresenceFact) -> None:
    """A peer's fact into the local presence table (newest passage wins)."""
    with store.transaction() as conn:
        if fact.direction == "gone":
            conn.execute("DELETE FROM presence WHERE member_id = ? AND gate = ? AND at_ms <= ?",
                         (fact.member, peer_gate(fact), fact.at_ms))
            return
        conn.execute(_APPLY, (fact.member, fact.direction, fact.at_ms, peer_gate(fact)))


def own_recent_facts(store: LocalStore, device: str, gates: Iterable[str],
                     since_ms: int) -> list[PresenceFact]:
    own = sorted(set(gates))
    if not own:
        return []
    marks = ",".join("?" * len(own))
    with store.lock:
        rows = store.conn.execute(
            f"SELECT member_id, direction, at_ms, gate FROM presence "  # only ? placeholders
            f"WHERE gate IN ({marks}) AND at_ms > ? ORDER BY at_ms", (*own, since_ms)
        ).fetchall()
    return [PresenceFact(device, str(r[3]), str(r[0]), str(r[1]), int(r[2])) for r in rows]


class SitePresence:
    """Ties the access service to the site link; the daemon starts and stops it."""

    def __init__(self, store: LocalStore, settings: SiteLinkSettings, gates: Iterable[str],
                 window: timedelta, cut_off_passback: timedelta, clock: Clock) -> None:
        self.store = store
        self.device = settings.device
        self.gates = tuple(gates)
        self.window = window
        self.cut_off_passback = cut_off_passback
        self.clock = clock
        self.link = SiteLink(settings, on_fact=lambda fact: apply_fact(store, fact),
                             on_connected=self.republish)

    def start(self) -> None:
        self.link.start()

    def stop(self) -> None:
        self.link.stop()

    def passed(self, member: str, gate: str, direction: str, at_ms: int) -> None:
        """A committed grant (or "gone" for a passage missed) at one of our gates."""
        self.link.publish([PresenceFact(self.device, gate, member, direction, at_ms)])

    def trusted_since(self, now: datetime) -> datetime | None:
        """Cut off: presence older than this does not block a pass-back (the fallback)."""
        return now - self.cut_off_passback if self.link.cut_off() else None

    def republish(self) -> None:
        since = int((self.clock() - self.window).timestamp() * 1000)
        facts = own_recent_facts(self.store, self.device, self.gates, since)
        self.link.publish(facts)
        log.info("site presence: republished %d own facts", len(facts))

    def occupancy(self) -> int:
        """Members inside by this device's view of the site (the same count the engine's
        occupancy limit uses)."""
        since = int((self.clock() - self.window).timestamp() * 1000)
        with self.store.lock:
            row = self.store.conn.execute(
                "SELECT COUNT(*) FROM presence WHERE direction = 'in' AND at_ms > ?",
                (since,)).fetchone()
        return int(row[0])

    def state(self) -> dict[str, object]:
        return {**self.link.state(), "occupancy": self.occupancy()}


def site_presence_for(config: AgentConfig, store: LocalStore, access: AccessService,
                      clock: Clock) -> SitePresence | None:
    """``[site_link]`` of the config wired into the access service; None without it."""
    site = config.site_link
    if site is None:
        return None

    def resolved(value: str | None) -> str | None:
        return str(config.path(value)) if value else None

    broker = BrokerSettings(
        host=site.host, port=site.port, client_id=f"site-{config.tenant}-{config.device}",
        username=site.username, password=site.password, tls_ca=resolved(site.tls_ca),
        tls_cert=resolved(site.tls_cert), tls_key=resolved(site.tls_key),
        keepalive_s=site.keepalive_s)
    settings = SiteLinkSettings(broker, site.topic_prefix, config.tenant, config.device,
                                tuple(site.peers),
                                presence_key(config.hmac_key(), config.tenant))
    presence = SitePresence(store, settings, (g.id for g in config.gates),
                            timedelta(hours=config.site_policy.presence_expiry_h),
                            timedelta(seconds=site.cut_off_passback_s), clock)
    access.presence_listener = presence.passed
    access.presence_trusted_since = presence.trusted_since
    return presence
