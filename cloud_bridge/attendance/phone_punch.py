"""A punch from the employee's phone, into the same tamper-evident record as a
terminal's: an ``attendance.punch`` row of the bridge's ``events`` table, chained with
``contracts.punch_chain`` on a device of its own per employee (``phone.<employee>``), so
that the timesheets, corrections and the chain audit treat it like any other punch and
show its source. Where the bridge has the tenant's keys, each punch is followed by a
signed head (``attendance.chain_head``, as a terminal signs its own) with a key derived
from the tenant's signing key for this purpose only (``phone_head_key``), so rewriting a
phone chain in the database, even with the hashes recomputed, fails the chain audit.

The phone says when the punch happened by its own clock, and when it sent it; the
difference between its sending time and the server's is the phone's clock error, which
corrects the punch time. An error over SKEW_LIMIT is flagged on the punch, not silently
trusted. The location is read once, at the punch; the chain keeps only whether it was
inside the site's fence, the coordinates go to ``attendance_punch_locations`` and are
erased when the site's retention ends (docs/attendance.md, "Phone punch").
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, bindparam, delete, insert, select, text

from cloud_bridge.attendance import audit_trail
from cloud_bridge.attendance.corrections import format_ts
from cloud_bridge.attendance.geofence import Fence, Policy, check_position, inside
from cloud_bridge.attendance.phone_enrolment import PhoneUser
from cloud_bridge.attendance.schema import geofences, punch_locations
from cloud_bridge.db_schema import events, is_sqlite
from cloud_bridge.errors import Forbidden, Invalid
from cloud_bridge.partitions import PartitionKeeper, store_events
from contracts.punch_chain import GENESIS, HEAD_EVENT, PUNCH_EVENT, punch_hash, sign_head
from contracts.punch_types import PunchType

SKEW_LIMIT = timedelta(minutes=2)
# a queued punch older than this is refused: the phone was offline too long to trust
MAX_AGE = timedelta(days=7)
DEFAULT_RETENTION_DAYS = 30  # punch locations without a site fence


class PunchRefused(Forbidden):
    """A punch the location policy refuses; ``reason`` is a code the phone translates."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Position:
    lat: float
    lon: float
    accuracy_m: float


@dataclass(frozen=True, slots=True)
class PhonePunch:
    client_id: str  # the phone's id of the punch: a second sync of it stores nothing new
    kind: PunchType
    at: datetime  # when it happened, by the phone's clock (aware)
    sent_at: datetime  # when the phone sent it, by the phone's clock
    position: Position | None


@dataclass(frozen=True, slots=True)
class Recorded:
    device: str
    seq: int
    ts: str
    flags: tuple[str, ...]
    location: str  # inside | outside | recorded | none
    duplicate: bool = False
    # PostgreSQL: the month partitions known to exist once the punch's transaction
    # commits (for the caller's PartitionKeeper.committed)
    new_months: frozenset[str] = frozenset()

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "seq": self.seq, "ts": self.ts,
                "flags": list(self.flags), "location": self.location,
                "duplicate": self.duplicate}


_HEAD_KEY_INFO = b"edge-suite attendance phone chain heads v1"
_HEAD_IDS = uuid.UUID("5d0c6a1e-4b7e-4f43-9a52-7f1f0c2b8e11")  # uuid5 namespace of head ids


@functools.lru_cache(maxsize=256)  # the key store hands out one key object per tenant
def phone_head_key(tenant_signing_key: Ed25519PrivateKey) -> Ed25519PrivateKey:
    """The key that signs the tenant's phone chain heads: derived (HKDF-SHA256) from the
    tenant's signing key, so no new secret is kept, yet a head signature can never pass
    for a signature of membership data, which the tenant key signs itself."""
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=_HEAD_KEY_INFO).derive(tenant_signing_key.private_bytes_raw())
    return Ed25519PrivateKey.from_private_bytes(seed)


def phone_device(employee: str) -> str:
    """The chain of an employee's phone punches (device ids are at most 64 long)."""
    name = f"phone.{employee}"
    if len(name) <= 64:
        return name
    return f"phone.{hashlib.sha256(employee.encode()).hexdigest()[:32]}"


# the statements of every punch, built once (bound parameters): building SQLAlchemy
# expressions per request costs more than running them
_FENCE = (select(geofences).where(geofences.c.tenant == bindparam("tenant"),
                                  geofences.c.site == bindparam("site"))
          .order_by(geofences.c.id.desc()).limit(1))
_EXISTING = select(events.c.seq, events.c.ts, events.c.data).where(
    events.c.tenant == bindparam("tenant"), events.c.device == bindparam("device"),
    events.c.id == bindparam("client_id"))
_TIP = (select(events.c.seq, events.c.data).where(events.c.tenant == bindparam("tenant"),
                                                  events.c.device == bindparam("device"))
        .order_by(events.c.seq.desc()).limit(1))
_ADD_LOCATION = insert(punch_locations)
_CHAIN_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


def site_fence(conn: Connection, tenant: str, site: str | None) -> Fence | None:
    if site is None:
        return None
    row = conn.execute(_FENCE, {"tenant": tenant, "site": site}).mappings().first()
    if row is None:
        return None
    return Fence(row["site"], Policy(row["policy"]), int(row["retention_days"]),
                 row["lat"], row["lon"], row["radius_m"],
                 tuple((float(a), float(b)) for a, b in (row["polygon"] or ())))


def _judge(user: PhoneUser, fence: Fence | None, pos: Position | None
           ) -> tuple[str, list[str]]:
    """(location word, flags), or PunchRefused under the refuse policy."""
    policy = user.policy or (fence.policy if fence else Policy.RECORD)
    if pos is not None:
        check_position(pos.lat, pos.lon)
    if policy is Policy.RECORD or fence is None:
        return ("recorded" if pos else "none"), []
    if pos is None:
        if policy is Policy.REFUSE:
            raise PunchRefused("no_location", "this punch needs the phone's location")
        return "none", ["no_location"]
    if inside(fence, pos.lat, pos.lon, pos.accuracy_m):
        return "inside", []
    if policy is Policy.REFUSE:
        raise PunchRefused("outside", f"the phone is outside the site {fence.site!r}")
    return "outside", ["outside_fence"]


def _existing(conn: Connection, tenant: str, device: str, client_id: str) -> Any:
    return conn.execute(_EXISTING, {"tenant": tenant, "device": device,
                                    "client_id": client_id}).first()


def _chain_tip(conn: Connection, tenant: str, device: str) -> tuple[int, str]:
    """(last seq, hash of the last punch) of the device's chain: one read down the
    primary key (tenant, device, seq) from its end (the last event is a punch or its
    signed head, which carries the punch's hash)."""
    last = conn.execute(_TIP, {"tenant": tenant, "device": device}).first()
    if last is None:
        return 0, GENESIS
    return int(last.seq), str(last.data.get("hash", GENESIS))


def record_phone_punch(conn: Connection, user: PhoneUser, punch: PhonePunch,
                       now: datetime, head_key: Ed25519PrivateKey | None = None,
                       keeper: PartitionKeeper | None = None) -> Recorded:
    """Store and chain the punch in the caller's write transaction, followed by its head
    signed with ``head_key`` when given; a refusal is raised (the route audits it,
    without the coordinates)."""
    device = phone_device(user.employee)
    _lock_chain(conn, user.tenant, device)
    old = _existing(conn, user.tenant, device, punch.client_id)
    if old is not None:
        return Recorded(device, int(old.seq), old.ts, tuple(old.data.get("flags", ())),
                        str(old.data.get("location", "none")), duplicate=True)
    skew = now - punch.sent_at
    at = punch.at + skew
    flags: list[str] = []
    if abs(skew) > SKEW_LIMIT:
        flags.append("clock_skew")
    if at > now + timedelta(seconds=5) or punch.at > punch.sent_at + timedelta(seconds=5):
        raise Invalid("the punch is dated after it was sent")
    if now - at > MAX_AGE:
        raise Invalid("the punch is older than seven days; ask your manager to add it")
    fence = site_fence(conn, user.tenant, user.site)
    location, located_flags = _judge(user, fence, punch.position)  # or PunchRefused
    flags += located_flags
    seq, prev = _chain_tip(conn, user.tenant, device)
    seq += 1
    ts = format_ts(at)
    data: dict[str, Any] = {
        "employee": user.employee, "type": punch.kind.value, "method": "phone",
        "terminal": "phone", "phone_at": format_ts(punch.at),
        "skew_s": round(skew.total_seconds()), "flags": flags, "location": location,
        "site": user.site, "prev_hash": prev}
    data["hash"] = punch_hash(prev, {"device": device, "seq": seq, "ts": ts,
                                     "type": PUNCH_EVENT, "data": data})
    received = int(now.timestamp() * 1000)
    rows = [{"tenant": user.tenant, "device": device, "seq": seq, "id": punch.client_id,
             "ts": ts, "type": PUNCH_EVENT, "data": data, "received_at": received}]
    if head_key is not None:
        rows.append(_signed_head(user.tenant, device, seq, ts, data["hash"], head_key,
                                 received))
    if keeper is None and not is_sqlite(conn):
        keeper = PartitionKeeper(conn.engine)
    # as ingest stores a device's events: on PostgreSQL into the month's partition with
    # the punch's keys in the ledger (the chain lock above makes each one new)
    months = frozenset(store_events(conn, rows, keeper))
    if punch.position is not None:
        days = fence.retention_days if fence else DEFAULT_RETENTION_DAYS
        conn.execute(_ADD_LOCATION, {
            "tenant": user.tenant, "device": device, "seq": seq, "lat": punch.position.lat,
            "lon": punch.position.lon, "accuracy_m": punch.position.accuracy_m,
            "erase_after": int((now + timedelta(days=days)).timestamp())})
    # expired locations are erased by the hourly pass (alert_sweep.py), not per punch
    return Recorded(device, seq, ts, tuple(flags), location, new_months=months)


def _lock_chain(conn: Connection, tenant: str, device: str) -> None:
    """Take the employee's chain for this transaction. SQLite's write transaction already
    is one at a time; on PostgreSQL two punches of one employee at once (a phone syncing
    its queue while the page sends again) would both read the same tip and, the
    partitioned events having no unique (tenant, device, seq), fork the chain."""
    if not is_sqlite(conn):
        conn.execute(_CHAIN_LOCK, {"key": f"edge-suite/phone-chain/{tenant}/{device}"})


def _signed_head(tenant: str, device: str, punch_seq: int, ts: str, head_hash: str,
                 key: Ed25519PrivateKey, received: int) -> dict[str, Any]:
    """The row of the chain's head after punch ``punch_seq``, signed, as the next seq."""
    return {"tenant": tenant, "device": device, "seq": punch_seq + 1, "ts": ts,
            "type": HEAD_EVENT, "id": str(uuid.uuid5(_HEAD_IDS, f"{tenant}/{device}/{punch_seq}")),
            "data": {"punch_seq": punch_seq, "hash": head_hash,
                     "sig": sign_head(key, head_hash)},
            "received_at": received}


def erase_expired_everywhere(conn: Connection, now: datetime) -> int:
    """The hourly pass (alert_sweep.py): expired locations of every tenant, so a site
    whose phones stopped punching does not keep them past the retention."""
    return conn.execute(delete(punch_locations).where(
        punch_locations.c.erase_after < int(now.timestamp()))).rowcount or 0


def set_geofence(conn: Connection, tenant: str, fence: Fence, author: str) -> None:
    """A site's fence, policy and retention (a new row; the newest counts), audited."""
    if fence.retention_days < 1 or fence.retention_days > 3650:
        raise Invalid("keep locations between 1 and 3650 days")
    if not fence.polygon:
        if fence.lat is None or fence.lon is None or not fence.radius_m \
                or fence.radius_m <= 0:
            raise Invalid("a circle needs a centre and a radius over 0 m")
        check_position(fence.lat, fence.lon)
    conn.execute(insert(geofences).values(
        tenant=tenant, site=fence.site, shape=fence.shape, lat=fence.lat, lon=fence.lon,
        radius_m=fence.radius_m, polygon=[list(c) for c in fence.polygon] or None,
        policy=fence.policy.value, retention_days=fence.retention_days, set_by=author,
        set_at=audit_trail.now_ms() // 1000))
    audit_trail.record(conn, tenant, author, "geofence_set", f"site:{fence.site}",
                       {"shape": fence.shape, "policy": fence.policy.value,
                        "retention_days": fence.retention_days})
