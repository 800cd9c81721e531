"""``edge-agent``: run the daemon, check a config, write a demo config."""

from __future__ import annotations

import base64
import json
import signal
import sys
import threading
from pathlib import Path

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
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
) -> None:
    """Run the agent until SIGTERM/SIGINT (systemd: Type=notify with a watchdog)."""
    setup_logging(log_level, json_lines=not plain_logs)
    cfg = load_config(config)
    refuse_unprovisioned(cfg)
    prepare_data_dir(cfg)
    device = DeviceOptions(metrics, min_free_mb, keep_backups, reserve_mb)
    agent = start_agent(cfg, AgentParts(device=device))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
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


DEMO_CONFIG = """\
# Demo device: two simulated readers on one turnstile, a simulated display.
tenant = "demo-gym"
device = "gate-01"
site = "ljubljana-center"
data_dir = "."
timezone = "Europe/Ljubljana"

[keys]
credential_hmac_key = "file:keys/credential_hmac.key"
tenant_public_key = "base64:{public}"

[site_policy]
anti_passback = true
reentry_after_s = 0
waiver_required = false
occupancy_limit = 150

[[gates]]
id = "turnstile-1"
url = "sim:"
zone = "main"
pulse_ms = 500
display = "display-1"

[[displays]]
id = "display-1"
url = "sim:"

[[readers]]
id = "entry"
url = "sim:"
gate = "turnstile-1"
direction = "in"

[[readers]]
id = "exit"
url = "sim:"
gate = "turnstile-1"
direction = "out"
"""


@app.command("demo-config")
def demo_config(
    out: Path = typer.Option(Path("demo/data"), help="folder for config, keys and store"),
    tenant_keys: Path | None = typer.Option(
        None, help="a tenant folder made by 'cloud-bridge tenant create' (its HMAC and "
        "public key are used, so the agent trusts that bridge)"),
    mqtt_port: int | None = typer.Option(None, help="add an [mqtt] table for this local port"),
) -> None:
    """Write a demo config with fresh keys (kept if already there)."""
    out.mkdir(parents=True, exist_ok=True)
    keys = out / "keys"
    keys.mkdir(exist_ok=True, mode=0o700)
    hmac_file = keys / "credential_hmac.key"
    if tenant_keys is not None and not hmac_file.exists():
        import shutil

        # the bridge hashes card UIDs with the tenant's key; the device must use the same
        shutil.copyfile(tenant_keys / "credential_hmac.key", hmac_file)
        hmac_file.chmod(0o600)
    if not hmac_file.exists():
        import os

        hmac_file.write_text(base64.b64encode(os.urandom(32)).decode())
        hmac_file.chmod(0o600)
    signing_file = keys / "tenant_signing.key"
    if not signing_file.exists():
        signing_file.write_text(base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw())
                                .decode())
        signing_file.chmod(0o600)
    if tenant_keys is not None:
        public_b64 = (tenant_keys / "public.key").read_text().strip()
    else:
        private = Ed25519PrivateKey.from_private_bytes(
            base64.b64decode(signing_file.read_text()))
        public_b64 = base64.b64encode(
            private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    config_file = out / "agent.toml"
    if not config_file.exists():
        text = DEMO_CONFIG.format(public=public_b64)
        if mqtt_port is not None:
            text += f'\n[mqtt]\nhost = "127.0.0.1"\nport = {mqtt_port}\n'
        config_file.write_text(text)
    print(config_file)


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
