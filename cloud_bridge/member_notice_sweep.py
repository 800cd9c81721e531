"""The periodic check behind two member notices (issue 18, part 4): every ``interval_s``
(an hour by default) the bridge looks at each tenant's entitlements and queues

- "membership expiring" for a membership whose last day is within the tenant's
  ``expiring_days`` (default 7), once per entitlement and end (an extended membership
  that nears its new end is told again);
- "punch card running low" for a punch card with at most ``punch_low_threshold``
  entries left (default 2) and at least one used (a new 2-entry card is not "running
  low"), once per entitlement and threshold. Entries left are
  ``entries_total`` minus the entries the devices reported (``used_by_device``, summed
  from the ingested ``access.decision`` events, cloud_bridge/ingest.py).

Blocked members, expired or not yet valid entitlements are skipped. What a member is
told, on which channel, and the opt-out: member_notices.py. Per-tenant settings live
in ``member_notice_settings`` (administrators set them on /t/{tenant}/member-notices)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, select

from cloud_bridge.db_schema import create_tables, entitlements, read_tx, write_tx
from cloud_bridge.member_notices import (
    KIND_EXPIRING,
    KIND_PUNCH_LOW,
    OptoutLinks,
    expiring_texts,
    member_recipient,
    punch_low_texts,
    send_to,
)
from cloud_bridge.member_qr_links import LOCAL_TZ
from cloud_bridge.notice_optouts import ensure_optout_schema
from cloud_bridge.notifications import Notifier
from cloud_bridge.periodic_pass import PeriodicPass

log = logging.getLogger(__name__)

settings_metadata = MetaData()
_SCHEMA_LOCK = 0x6564676D6E736574  # pg advisory lock id ("edgmnset")
DEFAULT_EXPIRING_DAYS = 7
DEFAULT_PUNCH_LOW = 2
MAX_EXPIRING_DAYS = 60
MAX_PUNCH_LOW = 50

member_notice_settings = Table(
    "member_notice_settings", settings_metadata,
    Column("tenant", String(64), primary_key=True),
    Column("expiring_days", Integer, nullable=False),  # 0 = no such notice
    Column("punch_low_threshold", Integer, nullable=False),  # 0 = no such notice
)


@dataclass(frozen=True, slots=True)
class NoticeSettings:
    expiring_days: int = DEFAULT_EXPIRING_DAYS
    punch_low_threshold: int = DEFAULT_PUNCH_LOW


def ensure_member_notice_schema(engine: Engine) -> None:
    create_tables(engine, settings_metadata, _SCHEMA_LOCK)
    ensure_optout_schema(engine)


def tenant_settings(conn: Connection, tenant: str) -> NoticeSettings:
    row = conn.execute(select(member_notice_settings).where(
        member_notice_settings.c.tenant == tenant)).first()
    return NoticeSettings() if row is None else NoticeSettings(
        row.expiring_days, row.punch_low_threshold)


def set_tenant_settings(conn: Connection, tenant: str, settings: NoticeSettings) -> None:
    if not 0 <= settings.expiring_days <= MAX_EXPIRING_DAYS:
        raise ValueError(f"expiring_days must be 0..{MAX_EXPIRING_DAYS}")
    if not 0 <= settings.punch_low_threshold <= MAX_PUNCH_LOW:
        raise ValueError(f"punch_low_threshold must be 0..{MAX_PUNCH_LOW}")
    values = {"expiring_days": settings.expiring_days,
              "punch_low_threshold": settings.punch_low_threshold}
    updated = conn.execute(member_notice_settings.update().where(
        member_notice_settings.c.tenant == tenant).values(**values))
    if not updated.rowcount:
        conn.execute(member_notice_settings.insert().values(tenant=tenant, **values))


def _expiring(conn: Connection, notifier: Notifier, tenant: str, now: datetime,
              days: int, links: OptoutLinks | None) -> int:
    now_s = int(now.timestamp())
    horizon = int((now + timedelta(days=days)).timestamp())
    rows = conn.execute(select(entitlements.c.id, entitlements.c.member_id,
                               entitlements.c.valid_to).where(
        entitlements.c.tenant == tenant, entitlements.c.kind == "membership",
        entitlements.c.valid_to > now_s, entitlements.c.valid_to <= horizon,
        entitlements.c.valid_from.is_(None) | (entitlements.c.valid_from <= now_s))).all()
    queued = 0
    for ent_id, member_id, valid_to in rows:
        who = member_recipient(conn, tenant, member_id)
        if who is None:
            continue
        last_day = datetime.fromtimestamp(valid_to - 1, LOCAL_TZ).date()  # valid_to: exclusive
        days_left = (last_day - now.astimezone(LOCAL_TZ).date()).days
        queued += send_to(conn, notifier, tenant, KIND_EXPIRING,
                          f"{KIND_EXPIRING}:{ent_id}:{valid_to}", who,
                          partial(expiring_texts, who.first_name, last_day, days_left),
                          links=links)
    return queued


def _punch_low(conn: Connection, notifier: Notifier, tenant: str, now: datetime,
               threshold: int, links: OptoutLinks | None) -> int:
    now_s = int(now.timestamp())
    rows = conn.execute(select(entitlements).where(
        entitlements.c.tenant == tenant, entitlements.c.kind == "punch_card",
        entitlements.c.entries_total.is_not(None),
        (entitlements.c.valid_to.is_(None)) | (entitlements.c.valid_to > now_s))).mappings()
    queued = 0
    for ent in rows.all():
        used = sum((ent["used_by_device"] or {}).values())
        left = ent["entries_total"] - used
        if left > threshold or left < 0 or used == 0:  # a new small card is not "low"
            continue
        who = member_recipient(conn, tenant, ent["member_id"])
        if who is None:
            continue
        queued += send_to(conn, notifier, tenant, KIND_PUNCH_LOW,
                          f"{KIND_PUNCH_LOW}:{ent['id']}:{threshold}", who,
                          partial(punch_low_texts, who.first_name, max(left, 0)),
                          links=links)
    return queued


def sweep(engine: Engine, notifier: Notifier, now: datetime,
          links: OptoutLinks | None = None) -> int:
    """Queue the new notices of every tenant with entitlements; how many."""
    with read_tx(engine) as conn:
        tenants = sorted(set(conn.execute(select(entitlements.c.tenant).distinct())
                             .scalars()))
    queued = 0
    for tenant in tenants:
        with write_tx(engine) as conn:
            settings = tenant_settings(conn, tenant)
            if settings.expiring_days:
                queued += _expiring(conn, notifier, tenant, now, settings.expiring_days,
                                    links)
            if settings.punch_low_threshold:
                queued += _punch_low(conn, notifier, tenant, now,
                                     settings.punch_low_threshold, links)
    return queued


class MemberNoticeSweep:
    def __init__(self, engine: Engine, notifier: Notifier, *, interval_s: float = 3600.0,
                 links: OptoutLinks | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(LOCAL_TZ)) -> None:
        self.engine = engine
        self.notifier = notifier
        self.links = links
        self.now = now
        self._pass = PeriodicPass("member-notice-sweep", self._once, interval_s)

    def start(self) -> None:
        if not self._pass.running:
            ensure_member_notice_schema(self.engine)
        self._pass.start()

    def stop(self) -> None:
        self._pass.stop()

    def _once(self) -> None:
        queued = sweep(self.engine, self.notifier, self.now(), self.links)
        if queued:
            log.info("member notices: %d new queued", queued)
