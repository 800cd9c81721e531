"""Desired device configs (remote configuration): every version the bridge accepted for
a device, the newest being what the device should run.

A config is checked before it is stored (contracts/remote_config.py: the device config
schema of ``edge-agent check-config``, no device-local sections, no secrets in clear);
a refused one raises DeviceConfigError naming the key. Versions count up per device from
1 and are never reused, so a device can refuse anything not newer than what it runs.
Drift compares the newest desired version with what the device reports in its retained
state (``config`` in docs/protocol.md's state message).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tomli_w
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from cloud_bridge.db_schema import create_tables, devices, read_tx, write_tx
from cloud_bridge.enrolment_service import enrolment_codes, ensure_enrolment_schema
from contracts.device_config import DeviceConfigError
from contracts.remote_config import DEVICE_LOCAL, check_desired_config

device_config_metadata = MetaData()
_SCHEMA_LOCK = 0x6564676563666721  # pg advisory lock id ("edgecfg!")

desired_configs = Table(
    "device_desired_configs", device_config_metadata,
    Column("tenant", String(64), primary_key=True),
    Column("device", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("config", JSON, nullable=False),  # without keys in clear, mqtt, data_dir
    Column("created_ms", BigInteger, nullable=False),
    Column("created_by", String(120), nullable=False),
)


def ensure_device_config_schema(engine: Engine) -> None:
    """The desired configs' table, and the enrolment codes' (profiles are read there)."""
    ensure_enrolment_schema(engine)
    create_tables(engine, device_config_metadata, _SCHEMA_LOCK)


@dataclass(frozen=True, slots=True)
class Desired:
    tenant: str
    device: str
    version: int
    config: dict[str, Any]
    created_ms: int
    created_by: str


def set_desired(engine: Engine, tenant: str, device: str, raw: Any, *, by: str,
                now_ms: int, audit: Callable[[Connection, int], None] | None = None
                ) -> Desired:
    """Check and store ``raw`` as the device's next version; DeviceConfigError if the
    config is refused (nothing is stored then). ``audit`` writes its trace in the same
    transaction (it gets the new version)."""
    config = check_desired_config(raw, tenant, device)
    for _attempt in range(3):  # two writers for one device: the loser takes the next number
        try:
            with write_tx(engine) as conn:
                last = conn.execute(select(func.max(desired_configs.c.version)).where(
                    desired_configs.c.tenant == tenant,
                    desired_configs.c.device == device)).scalar()
                version = int(last or 0) + 1
                conn.execute(insert(desired_configs).values(
                    tenant=tenant, device=device, version=version, config=config,
                    created_ms=now_ms, created_by=by[:120]))
                if audit is not None:
                    audit(conn, version)
            return Desired(tenant, device, version, config, now_ms, by[:120])
        except IntegrityError:
            continue
    raise DeviceConfigError(f"desired config of {tenant}/{device}: changed by someone else "
                            "at the same moment; try again")


def _desired(row: Any) -> Desired:
    return Desired(row.tenant, row.device, int(row.version), dict(row.config),
                   int(row.created_ms), row.created_by)


def get_desired(conn: Connection, tenant: str, device: str,
                version: int | None = None) -> Desired | None:
    """The newest desired config of the device (or ``version``); None if there is none."""
    stmt = select(desired_configs).where(desired_configs.c.tenant == tenant,
                                         desired_configs.c.device == device)
    if version is not None:
        stmt = stmt.where(desired_configs.c.version == version)
    row = conn.execute(stmt.order_by(desired_configs.c.version.desc()).limit(1)).first()
    return None if row is None else _desired(row)


def latest_versions(conn: Connection, tenant: str | None = None
                    ) -> dict[tuple[str, str], int]:
    """(tenant, device) -> the newest desired version, for every device that has one."""
    stmt = select(desired_configs.c.tenant, desired_configs.c.device,
                  func.max(desired_configs.c.version)).group_by(
        desired_configs.c.tenant, desired_configs.c.device)
    if tenant is not None:
        stmt = stmt.where(desired_configs.c.tenant == tenant)
    return {(t, d): int(v) for t, d, v in conn.execute(stmt)}


def enrolment_profile(conn: Connection, tenant: str, device: str) -> dict[str, Any] | None:
    """The profile the device was last enrolled with (cloud_bridge/enrolment.py), as a
    starting point for its first desired config: the same schema, without what the
    device keeps of its own. None if the device was never given an enrolment code."""
    row = conn.execute(select(enrolment_codes.c.site, enrolment_codes.c.profile).where(
        enrolment_codes.c.tenant == tenant, enrolment_codes.c.device == device)
        .order_by(enrolment_codes.c.created_ms.desc()).limit(1)).first()
    if row is None:
        return None
    profile = {k: v for k, v in dict(row.profile).items()
               if k not in ("keys", "tenant", "device", "site", *DEVICE_LOCAL)}
    return {"site": row.site, **profile}


def config_toml(config: dict[str, Any]) -> str:
    return tomli_w.dumps(config)


def diff_text(old: dict[str, Any] | None, new: dict[str, Any], old_name: str,
              new_name: str) -> str:
    """A unified diff of the two configs as TOML ("" when they are the same)."""
    before = config_toml(old).splitlines(keepends=True) if old is not None else []
    after = config_toml(new).splitlines(keepends=True)
    return "".join(difflib.unified_diff(before, after, old_name, new_name))


# -- drift ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Drift:
    device: str
    desired_version: int | None
    applied_version: int | None
    drift: bool
    status: str  # in_sync, pending, rolled_back, refused, no_desired, no_report
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "desired_version": self.desired_version,
                "applied_version": self.applied_version, "drift": self.drift,
                "status": self.status, "reason": self.reason}


def drift_of(device: str, desired: int | None, state: dict[str, Any] | None) -> Drift:
    """Whether the device runs its desired config, from its reported ``config`` state."""
    report = (state or {}).get("config")
    report = report if isinstance(report, dict) else {}
    applied = report.get("applied_version")
    applied = applied if isinstance(applied, int) else None
    if desired is None:
        return Drift(device, None, applied, False, "no_desired")
    if applied == desired:
        return Drift(device, desired, applied, False, "in_sync")
    attempted, status = report.get("attempted_version"), report.get("status")
    reason = report.get("reason") if isinstance(report.get("reason"), str) else None
    if attempted == desired and status in ("rolled_back", "refused"):
        return Drift(device, desired, applied, True, str(status), reason)
    rejected = report.get("rejected")
    if isinstance(rejected, str):  # unsigned or forged: no version in it to trust
        return Drift(device, desired, applied, True, "refused", rejected)
    if not report:
        return Drift(device, desired, applied, True, "no_report")
    return Drift(device, desired, applied, True, "pending")


def fleet_drift(engine: Engine, tenant: str) -> list[Drift]:
    """Every device of the tenant that has reported or has a desired config."""
    with read_tx(engine) as conn:
        wanted = latest_versions(conn, tenant)
        states = {r.device: r.state for r in conn.execute(
            select(devices.c.device, devices.c.state).where(devices.c.tenant == tenant))}
    names = sorted({d for _t, d in wanted} | set(states))
    return [drift_of(d, wanted.get((tenant, d)), states.get(d)) for d in names]
