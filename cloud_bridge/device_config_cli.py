"""``cloud-bridge device-config …``: a device's desired config from the shell (remote
configuration, docs/technician.md): ``set`` checks and stores a new version (the running
bridge delivers it signed), ``show`` prints a version, ``diff`` compares two versions or
a version with a file."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from cloud_bridge.db_schema import make_engine, read_tx
from cloud_bridge.device_configs import (
    config_toml,
    diff_text,
    drift_of,
    enrolment_profile,
    ensure_device_config_schema,
    get_desired,
    set_desired,
)
from contracts.device_config import DeviceConfigError

device_config_app = typer.Typer(help="desired device configs (remote configuration)",
                                no_args_is_help=True)
DbOpt = Annotated[str, typer.Option("--db", envvar="BRIDGE_DB",
                                    help="sqlite:///path or postgresql://user@host/db")]
TenantOpt = Annotated[str, typer.Option(help="tenant id")]
DeviceOpt = Annotated[str, typer.Option(help="device id")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(f"{path}: cannot read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _fail(f"{path}: not valid TOML: {exc}") from None


@device_config_app.command("set")
def set_config(
    tenant: TenantOpt, device: DeviceOpt,
    file: Annotated[Path | None, typer.Argument(
        help="the desired config (TOML): readers, gates, site_policy … without [mqtt] and "
             "secrets")] = None,
    from_enrolment: Annotated[bool, typer.Option(
        "--from-enrolment", help="use the profile the device was enrolled with")] = False,
    db: DbOpt = "sqlite:///bridge.sqlite3",
    by: Annotated[str, typer.Option(help="who set it (kept with the version)")] = "cli",
) -> None:
    """Check FILE (or the enrolment profile) and store it as the device's next desired
    version."""
    if (file is None) == (not from_enrolment):
        raise _fail("give either FILE or --from-enrolment")
    engine = make_engine(db)
    ensure_device_config_schema(engine)
    if file is not None:
        raw = _read_toml(file)
    else:
        with read_tx(engine) as conn:
            profile = enrolment_profile(conn, tenant, device)
        if profile is None:
            raise _fail(f"{tenant}/{device} was never given an enrolment code: no profile")
        raw = profile
    try:
        desired = set_desired(engine, tenant, device, raw, by=by,
                              now_ms=int(time.time() * 1000))
    except DeviceConfigError as exc:
        raise _fail(f"refused, nothing stored:\n{exc}") from None
    typer.echo(f"{tenant}/{device}: desired config version {desired.version} stored; the "
               "running bridge sends it to the device")


@device_config_app.command("show")
def show(tenant: TenantOpt, device: DeviceOpt, db: DbOpt = "sqlite:///bridge.sqlite3",
         version: Annotated[int | None, typer.Option(min=1, help="default: the newest")] = None
         ) -> None:
    """Print a desired version as TOML, and whether the device runs it."""
    from sqlalchemy import select

    from cloud_bridge.db_schema import devices

    engine = make_engine(db)
    ensure_device_config_schema(engine)
    with read_tx(engine) as conn:
        desired = get_desired(conn, tenant, device, version)
        newest = get_desired(conn, tenant, device)
        state = conn.execute(select(devices.c.state).where(
            devices.c.tenant == tenant, devices.c.device == device)).scalar()
    if desired is None or newest is None:
        raise _fail(f"{tenant}/{device} has no desired config"
                    + (f" version {version}" if version else ""))
    drift = drift_of(device, newest.version, state)
    typer.echo(f"# version {desired.version}, set by {desired.created_by}")
    typer.echo(f"# device runs version {drift.applied_version or 'unknown'}: {drift.status}"
               + (f" ({drift.reason})" if drift.reason else ""))
    typer.echo(config_toml(desired.config), nl=False)


@device_config_app.command("diff")
def diff(
    tenant: TenantOpt, device: DeviceOpt, db: DbOpt = "sqlite:///bridge.sqlite3",
    old: Annotated[int | None, typer.Option(min=1, help="default: the one before --new")] = None,
    new: Annotated[int | None, typer.Option(min=1, help="default: the newest")] = None,
    file: Annotated[Path | None, typer.Option(help="compare the newest with this file "
                                              "instead")] = None,
) -> None:
    """Show what changes between two desired versions (or the newest and a file)."""
    engine = make_engine(db)
    ensure_device_config_schema(engine)
    with read_tx(engine) as conn:
        after = get_desired(conn, tenant, device, new)
        if after is None:
            raise _fail(f"{tenant}/{device} has no desired config"
                        + (f" version {new}" if new else ""))
        if file is not None:
            text = diff_text(after.config, _read_toml(file), f"version {after.version}",
                             str(file))
        else:
            base = old if old is not None else after.version - 1
            before = get_desired(conn, tenant, device, base) if base >= 1 else None
            if base >= 1 and before is None:
                raise _fail(f"{tenant}/{device} has no desired config version {base}")
            text = diff_text(before.config if before else None, after.config,
                             f"version {base}", f"version {after.version}")
    typer.echo(text or "no differences", nl=not text)
