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

from agent.config import load_config
from agent.control_socket import ControlServer
from agent.daemon import AgentDaemon
from agent.errors import EdgeError
from agent.log_format import setup_logging

app = typer.Typer(help="Edge agent for gates, time clocks and POS printers.", no_args_is_help=True)
err = Console(stderr=True)


@app.command()
def run(
    config: Path = typer.Option(..., "--config", "-c", help="device config (TOML)"),
    log_level: str = typer.Option("INFO", help="DEBUG, INFO, WARNING"),
    plain_logs: bool = typer.Option(False, help="human log lines instead of JSON"),
) -> None:
    """Run the agent until SIGTERM/SIGINT."""
    setup_logging(log_level, json_lines=not plain_logs)
    try:
        cfg = load_config(config)
        daemon = AgentDaemon(cfg)
        daemon.start()
    except EdgeError as exc:
        err.print(f"[red]cannot start:[/red] {exc}")
        raise typer.Exit(2) from None
    control = ControlServer(cfg.socket_path, daemon)
    control.start()
    link = None
    if cfg.mqtt is not None:
        from sync.agent_link import AgentLink

        link = AgentLink(daemon, cfg.mqtt)
        link.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    err.print(f"agent {cfg.device} running; control socket {cfg.socket_path}")
    while not stop.wait(1.0):
        pass
    control.close()
    if link is not None:
        link.stop()
    daemon.stop()


@app.command("check-config")
def check_config(config: Path) -> None:
    """Validate a config file and print what it describes."""
    try:
        cfg = load_config(config)
    except EdgeError as exc:
        err.print(f"[red]invalid:[/red] {exc}")
        raise typer.Exit(2) from None
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
) -> None:
    """Write a demo config with fresh keys (kept if already there)."""
    out.mkdir(parents=True, exist_ok=True)
    keys = out / "keys"
    keys.mkdir(exist_ok=True, mode=0o700)
    hmac_file = keys / "credential_hmac.key"
    if not hmac_file.exists():
        import os

        hmac_file.write_text(base64.b64encode(os.urandom(32)).decode())
        hmac_file.chmod(0o600)
    signing_file = keys / "tenant_signing.key"
    if not signing_file.exists():
        signing_file.write_text(base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw())
                                .decode())
        signing_file.chmod(0o600)
    private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(signing_file.read_text()))
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    config_file = out / "agent.toml"
    if not config_file.exists():
        config_file.write_text(DEMO_CONFIG.format(public=base64.b64encode(public).decode()))
    print(config_file)


def main() -> None:  # pragma: no cover - console entry
    sys.exit(app())
