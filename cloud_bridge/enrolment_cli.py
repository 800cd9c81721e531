"""``cloud-bridge enrolment …``: issue a device's one-time enrolment code from the shell
(the same as the web page "Nova naprava"), and set where a tenant's devices reach the
broker."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import Annotated

import typer

from cloud_bridge.db_schema import make_engine
from cloud_bridge.device_ca import CaError
from cloud_bridge.enrolment import issue_code
from cloud_bridge.enrolment_service import (
    NotReady,
    check_ready,
    enrolment_codes,
    ensure_enrolment_schema,
    write_device_endpoint,
)
from contracts.device_config import DeviceConfigError

enrolment_app = typer.Typer(help="one-time enrolment codes for new devices",
                            no_args_is_help=True)
DbOpt = Annotated[str, typer.Option("--db", envvar="BRIDGE_DB",
                                    help="sqlite:///path or postgresql://user@host/db")]
CaDirOpt = Annotated[Path, typer.Option("--ca-dir", envvar="BRIDGE_CA_DIR",
                                        help="the device CAs (as for serve --ca-dir)")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"napaka: {message}", err=True)
    return typer.Exit(2)


@enrolment_app.command("issue")
def issue(
    tenant: Annotated[str, typer.Option(help="tenant id")],
    device: Annotated[str, typer.Option(help="the new device's id")],
    site: Annotated[str, typer.Option(help="site id")],
    ca_dir: CaDirOpt,
    profile: Annotated[Path | None, typer.Option(
        help="TOML with the device's readers, gates, printers, site_policy, timezone")] = None,
    ttl_hours: Annotated[int, typer.Option(min=1, max=14 * 24,
                                           help="how long the code works")] = 24,
    db: DbOpt = "sqlite:///bridge.sqlite3",
    by: Annotated[str, typer.Option(help="who issued it (kept with the code)")] = "cli",
) -> None:
    """Print a one-time code; the technician runs 'edge-agent provision' with it."""
    try:
        raw = tomllib.loads(profile.read_text()) if profile else {}
        check_ready(ca_dir, tenant)
        engine = make_engine(db)
        ensure_enrolment_schema(engine)
        issued = issue_code(engine, enrolment_codes, tenant=tenant, device=device, site=site,
                            profile=raw, ttl_s=ttl_hours * 3600, created_by=by,
                            now_ms=int(time.time() * 1000))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise _fail(f"profila ni mogoče prebrati: {exc}") from None
    except DeviceConfigError as exc:
        raise _fail(f"profil naprave ni veljaven: {exc}") from None
    except NotReady as exc:
        raise _fail(f"vpis naprav še ni nastavljen: {exc}") from None
    typer.echo(issued.code)
    typer.echo(f"za {issued.tenant}/{issued.device}, velja do {issued.expires_at} (UTC), "
               "samo enkrat", err=True)


@enrolment_app.command("broker")
def broker(
    tenant: Annotated[str, typer.Option(help="tenant id")],
    host: Annotated[str, typer.Option(help="the broker's name as devices reach it (a name "
                                            "in its server certificate)")],
    port: Annotated[int, typer.Option(help="this tenant's TLS listener port")],
    ca_dir: CaDirOpt,
    prefix: str = "es/v1",
) -> None:
    """Set where this tenant's devices reach the broker (goes into their [mqtt])."""
    try:
        path = write_device_endpoint(ca_dir, tenant, host, port, prefix)
    except CaError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"wrote {path}")
