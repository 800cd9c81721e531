"""``edge-agent``: run the daemon, check a config, write a demo config."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import typer
from rich.console import Console

from agent.assembly import AgentParts, start_agent
from agent.cli_errors import EXIT_REFUSED, err, refuses_device_errors
from agent.config import load_config, refuse_unprovisioned
from agent.control_client import AgentUnreachable, ControlClient
from agent.errors import EdgeError
from agent.log_format import setup_logging
from agent.runtime_paths import prepare_data_dir
from agent.store.maintenance import DEFAULT_KEEP_BACKUPS, DEFAULT_MIN_FREE_MB, DEFAULT_RESERVE_MB
from agent.supervisor import DeviceOptions

app = typer.Typer(help="Edge agent for gates, time clocks and POS printers.", no_args_is_help=True)


@app.command()
@refuses_device_errors("cannot start:")
def run(
    config: Path = typer.Option(..., "--config", "-c", help="device config (TOML)"),
    log_level: str = typer.Option("INFO", help="DEBUG, INFO, WARNING"),
    plain_logs: bool = typer.Option(False, help="human log lines instead of JSON"),
    metrics: str | None = typer.Option(
        None, "--metrics", envvar="EDGE_AGENT_METRICS",
        help="serve /metrics and /healthz on HOST:PORT (e.g. 127.0.0.1:9108)"),
    min_free_mb: int = typer.Option(
        DEFAULT_MIN_FREE_MB, envvar="EDGE_AGENT_MIN_FREE_MB", min=1,
        help="storage alarm when the data partition has less free space than this"),
    keep_backups: int = typer.Option(
        DEFAULT_KEEP_BACKUPS, envvar="EDGE_AGENT_KEEP_BACKUPS", min=1,
        help="store backups (taken before upgrades) to keep"),
    reserve_mb: int = typer.Option(
        DEFAULT_RESERVE_MB, envvar="EDGE_AGENT_RESERVE_MB", min=0,
        help="space held in reserve, released when the data partition is full (0 = none)"),
    config_deadline: float = typer.Option(
        20.0, envvar="EDGE_AGENT_CONFIG_DEADLINE_S", min=1.0,
        help="seconds a remotely set config has to come up healthy before it is rolled back"),
) -> None:
    """Run the agent until SIGTERM/SIGINT (systemd: Type=notify with a watchdog)."""
    setup_logging(log_level, json_lines=not plain_logs)
    from agent.remote_config import recover

    recovered = recover(config)  # an apply a stop cut short: back to the config before it
    if recovered:
        err.print(f"remote configuration: {recovered}")
    cfg = load_config(config)
    refuse_unprovisioned(cfg)
    prepare_data_dir(cfg)
    device = DeviceOptions(metrics, min_free_mb, keep_backups, reserve_mb)
    # handlers first: a SIGTERM while the agent starts (its socket is already open) stops
    # it cleanly once started, instead of killing it half-way
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    agent = start_agent(cfg, AgentParts(device=device, config_deadline_s=config_deadline))
    err.print(f"agent {cfg.device} running; control socket {cfg.socket_path}")
    while not stop.wait(1.0):
        pass
    agent.stop()


@app.command("check-config")
@refuses_device_errors("invalid:")
def check_config(config: Path) -> None:
    """Validate a config file and print what it describes."""
    cfg = load_config(config)
    print(json.dumps({
        "tenant": cfg.tenant, "device": cfg.device, "site": cfg.site,
        "readers": [r.id for r in cfg.readers], "gates": [g.id for g in cfg.gates],
        "store": str(cfg.store_path),
    }, indent=2))


@app.command("demo-config")
def demo_config(
    out: Path = typer.Option(Path("demo/data"), help="folder for config, keys and store"),
    kind: str = typer.Option("gate", "--kind", help="gate, timeclock or pos"),
    tenant_keys: Path | None = typer.Option(
        None, help="a tenant folder made by 'cloud-bridge tenant create' (its HMAC and "
        "public key are used, so the agent trusts that bridge)"),
    mqtt_port: int | None = typer.Option(None, help="add an [mqtt] table for this local port"),
    http_port: int = typer.Option(8088, min=0, max=65535,
                                  help="timeclock: port of the kiosk page's web server"),
    furs_port: int = typer.Option(9002, min=1, max=65535,
                                  help="pos: port of the FURS simulator (edge-sim furs serve)"),
    language: str = typer.Option("sl", help="the device's language: sl or en"),
) -> None:
    """Write a demo config (a gate, a time clock or a POS) with fresh keys (kept if
    already there)."""
    from agent.demo_config import KINDS, DemoOptions, write_demo

    if kind not in KINDS:
        err.print(f"[red]--kind must be one of {', '.join(KINDS)}[/red]")
        raise typer.Exit(2)
    if language not in ("sl", "en"):
        err.print("[red]--language must be sl or en[/red]")
        raise typer.Exit(2)
    options = DemoOptions(kind, tenant_keys, mqtt_port, http_port, furs_port,
                          language=language)
    config_file, hint = write_demo(out, options)
    print(config_file)
    if hint:
        err.print(hint)


@app.command()
def doctor(
    config: Path = typer.Option(Path("/etc/edge-agent/agent.toml"), "--config", "-c",
                                envvar="EDGE_AGENT_CONFIG", help="device config (TOML)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    bridge: str | None = typer.Option(None, help="bridge URL to compare the clock with "
                                      "(default: from enrolment.json)"),
    min_free_mb: int = typer.Option(DEFAULT_MIN_FREE_MB, envvar="EDGE_AGENT_MIN_FREE_MB"),
    timeout: float = typer.Option(5.0, help="seconds per network check"),
) -> None:
    """Check config, peripherals, clock, disk, broker, certificates, store and outbox;
    exits 1 when something must be fixed."""
    from agent.doctor import DoctorOptions, failed, render, run_checks
    from agent.doctor import as_json as to_json

    findings = run_checks(config, DoctorOptions(bridge, min_free_mb, timeout))
    if as_json:
        print(to_json(findings))
    else:
        Console().print(render(findings))
    if failed(findings):
        raise typer.Exit(1)


@app.command()
@refuses_device_errors("namestitev ni uspela:")
def provision(
    bridge: str = typer.Option(..., "--bridge", help="the bridge's URL, e.g. https://cloud.example"),
    code: str = typer.Option(..., "--code", help="one-time enrolment code from the fleet page"),
    target: Path = typer.Option(Path("/etc/edge-agent"), "--dir", help="config folder"),
    data_dir: str = typer.Option("/var/lib/edge-agent", help="where the agent keeps its store"),
    force: bool = typer.Option(False, help="replace an existing provisioning (kept as backup)"),
    ca_file: Path | None = typer.Option(None, help="CA bundle to verify the bridge's HTTPS"),
    tenant: str | None = typer.Option(
        None, help="the tenant you install for; a code of another tenant is refused"),
) -> None:
    """Make this device a site device from a one-time enrolment code: fetches the config,
    keys and device certificate from the bridge; no secret is typed or shown."""
    from agent.provisioning import provision as do_provision

    done = do_provision(bridge, code, target, data_dir=data_dir, force=force,
                        ca_file=ca_file, tenant=tenant)
    print(f"nameščeno: {done.tenant}/{done.device} (lokacija {done.site}): {done.config}")
    if done.certificate_until:
        print(f"certifikat naprave velja do {done.certificate_until}")
    print("naprej: systemctl enable --now edge-agent && edge-agent doctor -c "
          f"{done.config}")


@app.command("osdp-install")
@refuses_device_errors("key not set:")
def osdp_install(
    reader: str = typer.Option(..., "--reader", help="the OSDP reader's id in the config"),
    config: Path = typer.Option(Path("/etc/edge-agent/agent.toml"), "--config", "-c",
                                envvar="EDGE_AGENT_CONFIG", help="device config (TOML)"),
    rotate: bool = typer.Option(False, help="replace the reader's working key with a new one "
                                "(instead of install mode)"),
    timeout: float = typer.Option(10.0, help="seconds to wait for the reader per step"),
) -> None:
    """Give an OSDP reader a fresh secure channel key (install mode, or --rotate) and store
    it in the reader's scbk key file. Stop the agent first: the reader's line is busy."""
    from agent.osdp_keys import install_reader_key

    cfg = load_config(config)
    _refuse_if_running(cfg.socket_path)
    done = install_reader_key(cfg, reader, rotate=rotate, timeout_s=timeout)
    how = "rotated" if done.rotated else "set (install mode is over for this reader)"
    print(f"reader {done.reader}: new secure channel key {how}; stored in {done.key_file}. "
          "Start the agent: systemctl start edge-agent")


def _refuse_if_running(socket_path: Path) -> None:
    try:
        ControlClient(socket_path, timeout=3).request("status")
    except (AgentUnreachable, OSError):
        return
    err.print("[red]the agent is running:[/red] stop it first (systemctl stop edge-agent)")
    raise typer.Exit(EXIT_REFUSED)


@app.command("export-outbox")
@refuses_device_errors("export failed:")
def export_outbox_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="handover file to write (0600)"),
    config: Path | None = typer.Option(None, "--config", "-c", help="the old device's config"),
    store: Path | None = typer.Option(None, help="store file, e.g. from the old SD card"),
    tenant: str | None = typer.Option(None, help="with --store: the old device's tenant"),
    device: str | None = typer.Option(None, help="with --store: the old device's id"),
) -> None:
    """Replacing a device: save its unsent events and local counters, and retire its store."""
    from agent.store.handover import export_outbox
    from agent.store.local_store import LocalStore

    if config is not None:
        cfg = load_config(config)
        _refuse_if_running(cfg.socket_path)
        store, tenant, device = cfg.store_path, cfg.tenant, cfg.device
    if store is None or tenant is None or device is None:
        err.print("[red]give --config, or --store with --tenant and --device[/red]")
        raise typer.Exit(EXIT_REFUSED)
    if not store.exists():
        raise EdgeError(f"no store at {store}")
    summary = export_outbox(LocalStore(store), tenant, device, out)
    print(f"exported {summary.events} unsent events of {tenant}/{device} (seq up to "
          f"{summary.last_seq}, acked {summary.acked_seq}) to {out}; the old store is retired")


@app.command("import-outbox")
@refuses_device_errors("import failed:")
def import_outbox_cmd(
    file: Path = typer.Argument(..., help="handover file from export-outbox"),
    config: Path = typer.Option(..., "--config", "-c", help="the replacement device's config"),
) -> None:
    """Replacing a device: load the old device's unsent events into this (new) one."""
    from agent.store.handover import import_outbox
    from agent.store.local_store import LocalStore

    cfg = load_config(config)
    _refuse_if_running(cfg.socket_path)
    summary = import_outbox(LocalStore(cfg.store_path, cfg.durability), cfg.tenant,
                            cfg.device, file)
    print(f"imported {summary.events} unsent events; the next event is seq "
          f"{summary.last_seq + 1}. Start the agent: it resends them from seq "
          f"{summary.acked_seq + 1}")


def main() -> None:  # pragma: no cover - console entry
    sys.exit(app())
