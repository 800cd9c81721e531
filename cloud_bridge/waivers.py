"""Waivers: versioned documents a member signs before training (docs/waivers.md).

A version's text is stored with its SHA-256; a signature keeps the version, that hash,
the moment, the typed name and how it was given (kiosk or phone), so a later edit of the
text cannot change what a member agreed to. Signing sets the member's
``waiver_signed_on`` through membership_ops, so the device learns it through the usual
change log. Publishing a version writes its effective day into every device's desired
config (``site_policy.waiver_current_since``): the gate then asks members whose
signature is older to sign again at their next visit.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    inspect,
    select,
    update,
)

from cloud_bridge import change_log
from cloud_bridge.api_models import MemberPatch
from cloud_bridge.change_log import Entry
from cloud_bridge.db_schema import create_tables, lock_schema, members, read_tx, write_tx
from cloud_bridge.device_configs import (
    desired_configs,
    ensure_device_config_schema,
    get_desired,
    set_desired,
)
from cloud_bridge.errors import Invalid, NotFound
from cloud_bridge.membership_ops import Record, get_member, update_member
from cloud_bridge.waiver_drawing import check_drawing, drawing_hash
from contracts.device_config import DeviceConfigError

waiver_metadata = MetaData()
_SCHEMA_LOCK = 0x6564676577616976  # pg advisory lock id ("edgewaiv")
LOCAL_TZ = ZoneInfo("Europe/Ljubljana")
TITLE_MAX, TEXT_MAX, NAME_MAX = 120, 20_000, 120
METHODS = ("typed", "drawn")
CHANNELS = ("kiosk", "phone")

waiver_versions = Table(
    "waiver_versions", waiver_metadata,
    Column("tenant", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("title", String(TITLE_MAX), nullable=False),
    Column("body", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("effective_on", String(10), nullable=False),  # local day, ISO
    Column("published_ms", BigInteger, nullable=False),
    Column("published_by", String(120), nullable=False),
)

waiver_signatures = Table(
    "waiver_signatures", waiver_metadata,
    Column("tenant", String(64), primary_key=True),
    Column("member_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False),  # of the text that was shown
    Column("signed_ms", BigInteger, nullable=False),
    Column("signed_name", String(NAME_MAX), nullable=False),
    Column("method", String(8), nullable=False),  # typed / drawn
    Column("channel", String(8), nullable=False),  # kiosk / phone
    Column("drawing_svg", Text, nullable=True),  # the drawn signature's path, if drawn
    # SHA-256 of that path (waiver_drawing.py), beside the hash of the text
    Column("drawing_sha256", String(64), nullable=True),
)


@dataclass(frozen=True, slots=True)
class WaiverVersion:
    version: int
    title: str
    body: str
    sha256: str
    effective_on: date
    published_ms: int


@dataclass(frozen=True, slots=True)
class WaiverStatus:
    """What a member has signed against what is current."""

    current: WaiverVersion | None
    signed_version: int | None
    signed_ms: int | None

    @property
    def must_sign(self) -> bool:
        return self.current is not None and self.signed_version != self.current.version


def ensure_waiver_schema(engine: Engine) -> None:
    ensure_device_config_schema(engine)  # publishing points the devices' configs
    create_tables(engine, waiver_metadata, _SCHEMA_LOCK)
    with write_tx(engine) as conn:  # a table made before the drawing's hash existed
        lock_schema(conn, _SCHEMA_LOCK)
        present = {c["name"] for c in inspect(conn).get_columns("waiver_signatures")}
        if "drawing_sha256" not in present:
            conn.exec_driver_sql("ALTER TABLE waiver_signatures ADD COLUMN "
                                 "drawing_sha256 VARCHAR(64)")


def text_hash(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def _version(row: object) -> WaiverVersion:
    r = row._mapping  # type: ignore[attr-defined]
    return WaiverVersion(int(r["version"]), r["title"], r["body"], r["sha256"],
                         date.fromisoformat(r["effective_on"]), int(r["published_ms"]))


def versions(conn: Connection, tenant: str) -> list[WaiverVersion]:
    rows = conn.execute(select(waiver_versions).where(waiver_versions.c.tenant == tenant)
                        .order_by(waiver_versions.c.version.desc()))
    return [_version(r) for r in rows]


def current_version(conn: Connection, tenant: str) -> WaiverVersion | None:
    row = conn.execute(select(waiver_versions).where(waiver_versions.c.tenant == tenant)
                       .order_by(waiver_versions.c.version.desc()).limit(1)).first()
    return None if row is None else _version(row)


def status(conn: Connection, tenant: str, member_id: str) -> WaiverStatus:
    current = current_version(conn, tenant)
    row = conn.execute(select(waiver_signatures.c.version, waiver_signatures.c.signed_ms)
                       .where(waiver_signatures.c.tenant == tenant,
                              waiver_signatures.c.member_id == member_id)
                       .order_by(waiver_signatures.c.version.desc()).limit(1)).first()
    return WaiverStatus(current, None if row is None else int(row.version),
                        None if row is None else int(row.signed_ms))


def drawing_of(conn: Connection, tenant: str, member_id: str, version: int) -> str | None:
    """The drawn signature's path of that version, if it was drawn."""
    return conn.execute(select(waiver_signatures.c.drawing_svg).where(
        waiver_signatures.c.tenant == tenant, waiver_signatures.c.member_id == member_id,
        waiver_signatures.c.version == version)).scalar()


def publish(engine: Engine, tenant: str, title: str, body: str, *, by: str,
            now_ms: int | None = None) -> tuple[WaiverVersion, list[str]]:
    """Store the next version (effective today, local time) and point every device of the
    tenant that has a desired config at it. Returns the version and the devices whose
    config could not be updated (named in the page; the gate keeps the older day)."""
    title, body = title.strip(), body.strip()
    if not title or len(title) > TITLE_MAX:
        raise Invalid(f"title: 1 to {TITLE_MAX} characters")
    if not body or len(body) > TEXT_MAX:
        raise Invalid(f"text: 1 to {TEXT_MAX} characters")
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    today = datetime.fromtimestamp(now_ms / 1000, LOCAL_TZ).date()
    with write_tx(engine) as conn:
        last = conn.execute(select(func.max(waiver_versions.c.version)).where(
            waiver_versions.c.tenant == tenant)).scalar()
        version = WaiverVersion(int(last or 0) + 1, title, body, text_hash(body), today, now_ms)
        conn.execute(insert(waiver_versions).values(
            tenant=tenant, version=version.version, title=title, body=body,
            sha256=version.sha256, effective_on=today.isoformat(), published_ms=now_ms,
            published_by=by[:120]))
    return version, _point_devices(engine, tenant, today, version.version, by=by,
                                   now_ms=now_ms)


def _point_devices(engine: Engine, tenant: str, since: date, version: int, *, by: str,
                   now_ms: int) -> list[str]:
    with read_tx(engine) as conn:
        names = [r.device for r in conn.execute(
            select(desired_configs.c.device).where(desired_configs.c.tenant == tenant)
            .distinct())]
        desired = {name: get_desired(conn, tenant, name) for name in names}
    failed: list[str] = []
    for name, current in desired.items():
        if current is None:
            continue
        policy = {**current.config.get("site_policy", {}),
                  "waiver_current_since": since.isoformat(),
                  "waiver_current_version": version}
        try:
            set_desired(engine, tenant, name, {**current.config, "site_policy": policy},
                        by=f"waiver v{since.isoformat()} by {by}", now_ms=now_ms)
        except DeviceConfigError:  # one refused config must not stop the rest
            failed.append(name)
    return failed


def sign(conn: Connection, tenant: str, member_id: str, version: int, signed_name: str,
         *, consent: bool, method: str = "typed", channel: str = "kiosk",
         drawing_svg: str | None = None, now_ms: int | None = None) -> list[Record]:
    """Record a signature of the *current* version in the caller's write transaction and
    set the member's waiver day; returns the change records for the devices (the caller
    appends them to the change log, as for every membership change)."""
    if not consent:
        raise Invalid("consent: tick the box to agree")
    name = signed_name.strip()
    if len(name) > NAME_MAX:
        raise Invalid(f"name: at most {NAME_MAX} characters")
    if method not in METHODS or channel not in CHANNELS:
        raise Invalid("method or channel is not known")
    if method == "drawn":  # the drawing signs; a typed name beside it is kept too
        drawing_svg = check_drawing(drawing_svg or "")
    elif not name:  # typed: the name is the signature
        raise Invalid(f"name: 1 to {NAME_MAX} characters")
    else:
        drawing_svg = None
    get_member(conn, tenant, member_id)  # NotFound for another tenant's member
    current = current_version(conn, tenant)
    if current is None:
        raise NotFound("no waiver is published")
    if version != current.version:
        raise Invalid(f"version {version} is not the current one ({current.version}); "
                      "reload the page and read the current text")
    if status(conn, tenant, member_id).signed_version == current.version:
        return []  # signed twice (a double submit): the first signature stands
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    conn.execute(insert(waiver_signatures).values(
        tenant=tenant, member_id=member_id, version=current.version, sha256=current.sha256,
        signed_ms=now_ms, signed_name=name, method=method, channel=channel,
        drawing_svg=drawing_svg,
        drawing_sha256=drawing_hash(drawing_svg) if drawing_svg else None))
    day = datetime.fromtimestamp(now_ms / 1000, LOCAL_TZ).date()
    records = update_member(conn, tenant, member_id, MemberPatch(waiver_signed_on=day))
    # the version id travels with the day: the gate compares versions where it has one
    conn.execute(update(members).where(members.c.tenant == tenant, members.c.id == member_id)
                 .values(waiver_version=current.version))
    return [{**rec, "waiver_version": current.version} for rec in records]


class WaiverDesk:
    """The phone page's view of waivers (cloud_bridge/member_qr.py): what a member must
    sign, and signing it, with the change published to the devices at once."""

    def __init__(self, engine: Engine, publish_entry: Callable[[Entry], None]) -> None:
        self.engine = engine
        self.publish_entry = publish_entry

    def pending(self, tenant: str, member_id: str) -> dict[str, object] | None:
        with read_tx(self.engine) as conn:
            state = status(conn, tenant, member_id)
        if not state.must_sign or state.current is None:
            return None
        return {"version": state.current.version, "title": state.current.title,
                "body": state.current.body, "again": state.signed_version is not None}

    def sign(self, tenant: str, member_id: str, version: int, signed_name: str,
             consent: bool, drawing: str | None = None) -> None:
        """Invalid or NotFound (cloud_bridge.errors) when refused; nothing is stored then.
        With ``drawing`` (waiver_drawing.py) the signature is drawn, else typed."""
        with write_tx(self.engine) as conn:
            records = sign(conn, tenant, member_id, version, signed_name, consent=consent,
                           method="drawn" if drawing else "typed", channel="phone",
                           drawing_svg=drawing)
            entry = change_log.append(conn, tenant, records) if records else None
        if entry is not None:
            self.publish_entry(entry)
