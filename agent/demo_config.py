"""Demo device configs for ``edge-agent demo-config``: a gate, a time clock or a POS, all
on simulated peripherals (``sim:``), with fresh keys kept beside the config.

Each kind is a complete config that ``edge-agent check-config`` accepts; the time clock
adds the punch-chain signing key and the kiosk page's local web server, the POS points at
FURS test material made by ``edge-sim furs init`` (see the printed hint)."""

from __future__ import annotations

import base64
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

DemoKind = Literal["gate", "timeclock", "pos"]
KINDS: tuple[DemoKind, ...] = ("gate", "timeclock", "pos")

_HEAD = """\
# Demo device ({what}), every peripheral simulated (sim:).
tenant = "demo-gym"
device = "{device}"
site = "ljubljana-center"
data_dir = "."
timezone = "{timezone}"
language = "{language}"

[keys]
credential_hmac_key = "file:keys/credential_hmac.key"
tenant_public_key = "base64:{public}"
"""

_GATE = """
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

# the kiosk page: http://127.0.0.1:<port>/kiosk/t1 ; tap with edge-sim tap -r wall
_TIMECLOCK = """
[[terminals]]
id = "t1"
display = "display-1"
choose_window_s = 4

[[displays]]
id = "display-1"
url = "sim:"

[[readers]]
id = "wall"
url = "sim:"
terminal = "t1"

[local_http]
bind = "127.0.0.1"
port = {http_port}
"""

_POS = """
[[printers]]
id = "receipt"
url = "sim:"

[pos]
tax_number = 12345678
premise_id = "P1"
device_id = "BLAG1"
issuer_name = "Demo d.o.o."
issuer_address = ["Tržaška cesta 24", "1000 Ljubljana"]
pkcs12_path = "furs/taxpayer.p12"
pkcs12_password_file = "furs/taxpayer.password"
furs_url = "https://127.0.0.1:{furs_port}"
furs_ca_file = "furs/ca.pem"
printer = "receipt"
paper_width = 80
"""

_DEVICE = {"gate": "gate-01", "timeclock": "clock-01", "pos": "pos-01"}
_WHAT = {"gate": "a turnstile with entry and exit readers",
         "timeclock": "a wall time clock with its kiosk page",
         "pos": "a cash register printing fiscal receipts"}


@dataclass(frozen=True)
class DemoOptions:
    kind: DemoKind = "gate"
    tenant_keys: Path | None = None
    mqtt_port: int | None = None
    http_port: int = 8088
    furs_port: int = 9002
    timezone: str = "Europe/Ljubljana"
    language: str = "sl"


def _write_secret(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


def _keys(out: Path, tenant_keys: Path | None) -> str:
    """Make (or keep) the key files; the tenant's public key, base64."""
    keys = out / "keys"
    keys.mkdir(exist_ok=True, mode=0o700)
    hmac_file = keys / "credential_hmac.key"
    if tenant_keys is not None and not hmac_file.exists():
        # the bridge hashes card UIDs with the tenant's key; the device must use the same
        shutil.copyfile(tenant_keys / "credential_hmac.key", hmac_file)
        hmac_file.chmod(0o600)
    if not hmac_file.exists():
        _write_secret(hmac_file, base64.b64encode(os.urandom(32)).decode())
    signing_file = keys / "tenant_signing.key"
    if not signing_file.exists():
        _write_secret(signing_file, base64.b64encode(
            Ed25519PrivateKey.generate().private_bytes_raw()).decode())
    if tenant_keys is not None:
        return (tenant_keys / "public.key").read_text().strip()
    private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(signing_file.read_text()))
    return base64.b64encode(private.public_key().public_bytes(Encoding.Raw,
                                                              PublicFormat.Raw)).decode()


def demo_text(options: DemoOptions, public_b64: str, out: Path) -> str:
    text = _HEAD.format(what=_WHAT[options.kind], device=_DEVICE[options.kind],
                        timezone=options.timezone, language=options.language,
                        public=public_b64)
    if options.kind == "gate":
        text += _GATE
    elif options.kind == "timeclock":
        device_key = out / "keys" / "device_signing.key"
        if not device_key.exists():  # signs the punch chain
            _write_secret(device_key, base64.b64encode(
                Ed25519PrivateKey.generate().private_bytes_raw()).decode())
        text = text.replace('[keys]\n',
                            '[keys]\ndevice_signing_key = "file:keys/device_signing.key"\n')
        text += _TIMECLOCK.format(http_port=options.http_port)
    else:
        text += _POS.format(furs_port=options.furs_port)
    if options.mqtt_port is not None:
        text += f'\n[mqtt]\nhost = "127.0.0.1"\nport = {options.mqtt_port}\n'
    return text


def write_demo(out: Path, options: DemoOptions) -> tuple[Path, str | None]:
    """Write ``agent.toml`` (kept if already there) and its keys; the config's path and
    what to do next, if anything."""
    out.mkdir(parents=True, exist_ok=True)
    public_b64 = _keys(out, options.tenant_keys)
    config_file = out / "agent.toml"
    if not config_file.exists():
        config_file.write_text(demo_text(options, public_b64, out), encoding="utf-8")
    hint = None
    if options.kind == "pos" and not (out / "furs" / "taxpayer.p12").exists():
        hint = (f"next: edge-sim furs init {out / 'furs'} && edge-sim furs serve "
                f"{out / 'furs'} --port {options.furs_port}")
    elif options.kind == "timeclock":
        hint = f"kiosk page: http://127.0.0.1:{options.http_port}/kiosk/t1"
    return config_file, hint
