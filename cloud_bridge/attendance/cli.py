"""``cloud-bridge attendance``: verify punch chains, print monthly reports, register the
time clocks' chain keys."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine

from cloud_bridge.attendance.chain_audit import (
    audit_chain,
    chain_devices,
    decode_public_key,
    set_device_key,
)
from cloud_bridge.attendance.employer_rules import tenant_rules
from cloud_bridge.attendance.phone_punch import phone_head_key
from cloud_bridge.attendance.reports import (
    company_csv,
    employee_csv,
    month_report,
    parse_month,
    report_html,
)
from cloud_bridge.attendance.schema import create_attendance_schema
from cloud_bridge.attendance.timesheet_marks import month_marks
from cloud_bridge.db_schema import make_engine, read_tx, write_tx
from cloud_bridge.tenant_keys import TenantKeyStore

attendance_app = typer.Typer(help="E-EDC working-time records: chain audit and reports",
                             no_args_is_help=True)

DbOpt = Annotated[str, typer.Option("--db", envvar="BRIDGE_DB",
                                    help="sqlite:///path or postgresql://user@host/db")]
TenantOpt = Annotated[str, typer.Option("--tenant", help="tenant id")]


def _engine(db: str) -> Engine:
    engine = make_engine(db)
    create_attendance_schema(engine)
    return engine


@attendance_app.command("verify-chain")
def verify_chain_cmd(
    tenant: TenantOpt,
    device: Annotated[str | None, typer.Option(help="device id (default: every time clock)")
                      ] = None,
    db: DbOpt = "sqlite:///bridge.sqlite3",
    public_key: Annotated[str | None, typer.Option(
        help="base64 Ed25519 key of the device (default: the registered one)")] = None,
    keys_dir: Annotated[Path | None, typer.Option(
        help="the bridge's key directory: phone chains' heads are checked with the "
        "tenant's phone head key from it")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Check the hash chain and signed heads of a time clock's punches as stored here.
    Exit status 1 when a chain is broken."""
    key = decode_public_key(public_key) if public_key else None
    phone_key = (phone_head_key(TenantKeyStore(keys_dir).get(tenant).signing_key).public_key()
                 if keys_dir is not None else None)
    engine = _engine(db)
    with read_tx(engine) as conn:
        devices = [device] if device else chain_devices(conn, tenant)
        reports = [audit_chain(conn, tenant, d,
                               key or (phone_key if d.startswith("phone.") else None))
                   for d in devices]
    engine.dispose()
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in reports] if device is None
                              else reports[0].as_dict(), indent=2))
    else:
        for r in reports:
            typer.echo(r.summary())
        if not reports:
            typer.echo(f"{tenant}: no punches stored")
    if not all(r.ok for r in reports):
        raise typer.Exit(1)


@attendance_app.command("report")
def report_cmd(
    tenant: TenantOpt,
    month: Annotated[str, typer.Option(help="YYYY-MM")],
    fmt: Annotated[str, typer.Option("--format", help="csv | html")] = "csv",
    detail: Annotated[bool, typer.Option(
        help="CSV: one row per employee per day instead of the monthly totals")] = False,
    employee: Annotated[str | None, typer.Option(help="only this employee")] = None,
    daily_hours: Annotated[float | None, typer.Option(
        min=1, max=24, help="override the tenant's daily hours")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o",
                                                help="file (default: stdout)")] = None,
    db: DbOpt = "sqlite:///bridge.sqlite3",
) -> None:
    """The monthly working-time report (totals, absences, missing-departure alerts)."""
    if fmt not in ("csv", "html"):
        typer.echo("--format is csv or html", err=True)
        raise typer.Exit(2)
    try:
        year, mon = parse_month(month)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    engine = _engine(db)
    with read_tx(engine) as conn:
        rules = tenant_rules(conn, tenant)
        if daily_hours is not None:
            rules = replace(rules, daily_hours=daily_hours)
        report = month_report(conn, tenant, year, mon, rules, employee=employee)
        marks = month_marks(conn, report)
    engine.dispose()
    if fmt == "html":
        text = report_html(report, marks=marks)
    else:
        text = employee_csv(report) if detail else company_csv(report)
    if output:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"{len(report.employees)} employees, {report.label}: written to {output}",
                   err=True)
    else:
        sys.stdout.write(text)


@attendance_app.command("device-key")
def device_key_cmd(
    tenant: TenantOpt,
    device: Annotated[str, typer.Option(help="device id")],
    public_key: Annotated[str, typer.Option(
        help="base64 raw Ed25519 public key of the device's punch-chain key")],
    actor: Annotated[str, typer.Option(help="who registers it (audit trail)")],
    db: DbOpt = "sqlite:///bridge.sqlite3",
) -> None:
    """Register the key that verifies the device's signed chain heads (audited)."""
    engine = _engine(db)
    try:
        with write_tx(engine) as conn:
            set_device_key(conn, tenant, device, public_key, actor)
    except ValueError as exc:
        typer.echo(f"not a device key: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    typer.echo(f"{tenant}/{device}: punch-chain key registered")
