"""``edge-agent provision``: turn a fresh install into a site device from a one-time
enrolment code (cloud_bridge/enrolment.py is the other side).

The device makes its own TLS key pair and sends only a CSR; the bridge answers with the
config, the tenant's keys and (when it has a device CA) the certificate. Everything is
staged in a folder next to the target, validated as a whole with the agent's own config
loader, and only then moved into place; every file is 0600 (folders 0700), owned by the
service user when it exists. Nothing secret is printed or logged.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import pwd
import shutil
import tempfile
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.config import UNPROVISIONED, load_config
from agent.errors import EdgeError
from contracts.enrolment_code import well_formed

CONFIG_NAME = "agent.toml"
ENROLMENT_NAME = "enrolment.json"
SERVICE_USER = "edge-agent"


class ProvisioningError(EdgeError):
    """Provisioning could not finish; nothing in the target folder was changed."""


# What the technician reads (Slovenian; a gettext catalog comes later). When the bridge
# explains a refusal, its own (Slovenian) detail is shown instead of the fallback here.
TEXT: dict[str, str] = {
    "garbled": "koda ni prave oblike: 16 znakov, npr. ABCD-EFGH-JKMN-PQRS (brez črk O, I, "
               "L, U in številk 0, 1); preverite, kako je prepisana",
    "bad_url": "--bridge mora biti naslov https://, ne '{bridge}'",
    "plain_http": "naslov strežnika mora biti https:// (po njem potujejo ključi); http je "
                  "dovoljen le za strežnik na tej napravi",
    "exists": "{config} že obstaja: naprava je že nameščena. Z --force jo zamenjate (stare "
              "datoteke ostanejo v varnostni mapi poleg)",
    "unreachable": "strežnika na {bridge} ni mogoče doseči ({error}); preverite naslov in "
                   "omrežje (edge-agent doctor --bridge URL)",
    "refused": "vpis zavrnjen: {detail}",
    "other_device": "strežnik je vrnil nastavitve druge naprave; ničesar nisem namestil",
}
REFUSED = {
    404: "strežnik te kode ne pozna (tipkarska napaka?)",
    409: "ta koda je bila že uporabljena: izdajte novo",
    410: "ta koda je potekla: izdajte novo",
    403: "ta koda ni za tega najemnika",
    429: "preveč napačnih poskusov: poskusite znova čez nekaj minut",
    422: "strežnik je zavrnil zahtevo",
    503: "vpis naprav na strežniku še ni nastavljen: obvestite skrbnika strežnika",
}
# refusals whose (Slovenian) detail from the bridge is meant for the technician
_BRIDGE_EXPLAINS = frozenset({403, 404, 409, 410, 429})


@dataclass(frozen=True, slots=True)
class Provisioned:
    config: Path
    tenant: str
    device: str
    site: str
    certificate_until: str | None
    written: tuple[Path, ...]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _new_key_and_csr() -> tuple[bytes, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edge-agent")]))
           .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, csr.public_bytes(serialization.Encoding.PEM).decode()


def _redeem(bridge: str, body: dict[str, Any], ca_file: Path | None,
            timeout_s: float) -> dict[str, Any]:
    import httpx

    url = bridge.rstrip("/") + "/api/enrolment/redeem"
    try:
        reply = httpx.post(url, json=body, timeout=timeout_s,
                           verify=str(ca_file) if ca_file else True)
    except httpx.HTTPError as exc:
        raise ProvisioningError(TEXT["unreachable"].format(bridge=bridge, error=exc)) from None
    if reply.status_code == 200:
        return dict(reply.json())
    try:
        detail = reply.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    fallback = REFUSED.get(reply.status_code, f"HTTP {reply.status_code}")
    explains = isinstance(detail, str) and reply.status_code in _BRIDGE_EXPLAINS
    text = detail if explains else fallback
    raise ProvisioningError(TEXT["refused"].format(detail=text))


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def provision(
    bridge: str,
    code: str,
    target: Path,
    *,
    data_dir: str = "/var/lib/edge-agent",
    owner: str | None = SERVICE_USER,
    force: bool = False,
    ca_file: Path | None = None,
    timeout_s: float = 20.0,
    tenant: str | None = None,
) -> Provisioned:
    """``tenant``: the tenant the technician expects; the bridge refuses a code of
    another tenant without using it up. Nothing is written before the bridge answers."""
    if not well_formed(code):
        raise ProvisioningError(TEXT["garbled"])
    parts = urlsplit(bridge)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ProvisioningError(TEXT["bad_url"].format(bridge=bridge))
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ProvisioningError(TEXT["plain_http"])
    target = target.resolve()
    config_path = target / CONFIG_NAME
    if config_path.exists() and not force and not _unprovisioned(config_path):
        raise ProvisioningError(TEXT["exists"].format(config=config_path))

    key_pem, csr_pem = _new_key_and_csr()
    body: dict[str, Any] = {"code": code, "csr_pem": csr_pem, "data_dir": data_dir}
    if tenant is not None:
        body["tenant"] = tenant
    answer = _redeem(bridge, body, ca_file, timeout_s)

    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    stage = Path(tempfile.mkdtemp(prefix=".provision-", dir=target))
    try:
        files: dict[str, str] = answer["files"]
        _write(stage / CONFIG_NAME, answer["config_toml"].encode())
        _write(stage / files["credential_hmac_key"], answer["credential_hmac_key"].encode())
        cert_until = None
        if answer.get("ca_pem") and "ca" in files:
            _write(stage / files["ca"], answer["ca_pem"].encode())
        if answer.get("device_cert_pem") and "cert" in files:
            cert = x509.load_pem_x509_certificate(answer["device_cert_pem"].encode())
            cert_until = cert.not_valid_after_utc.strftime("%Y-%m-%d")
            _write(stage / files["cert"], answer["device_cert_pem"].encode())
            _write(stage / files["key"], key_pem)
        base64.b64decode(answer["tenant_public_key"], validate=True)
        cfg = load_config(stage / CONFIG_NAME)  # the whole set must load before it is used
        if (cfg.tenant, cfg.device) != (answer["tenant"], answer["device"]):
            raise ProvisioningError(TEXT["other_device"])
        _write(stage / ENROLMENT_NAME, json.dumps({
            "bridge": bridge, "tenant": cfg.tenant, "device": cfg.device, "site": cfg.site,
            "enrolled_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "certificate_until": cert_until,
        }, indent=2).encode())
        written = _install(stage, target, force)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    _hand_over(target, written, owner)
    return Provisioned(config_path, cfg.tenant, cfg.device, cfg.site, cert_until,
                       tuple(written))


def _unprovisioned(config_path: Path) -> bool:
    """The Debian package's default config (packaging/deb/agent.toml) stands for "not
    provisioned yet": provisioning replaces it without --force. Anything else is a
    provisioning (or a technician's own file) and is only replaced with --force."""
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return raw.get("tenant") == UNPROVISIONED and raw.get("device") == UNPROVISIONED


def _install(stage: Path, target: Path, force: bool) -> list[Path]:
    staged = sorted(p for p in stage.rglob("*") if p.is_file())
    if force:
        backup = target / f".replaced-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        for p in staged:
            old = target / p.relative_to(stage)
            if old.exists():
                (backup / old.relative_to(target)).parent.mkdir(parents=True, exist_ok=True,
                                                               mode=0o700)
                os.replace(old, backup / old.relative_to(target))
    written = []
    for p in staged:
        dest = target / p.relative_to(stage)
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.replace(p, dest)
        written.append(dest)
    return written


def _hand_over(target: Path, written: list[Path], owner: str | None) -> None:
    """Files are 0600; the service user must be able to read them."""
    if owner is None or os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(owner)
    except KeyError:
        return  # no service user (yet): root keeps them; systemd-sysusers creates it
    folders = {target} | {p.parent for p in written}
    for path in [*folders, *written]:
        os.chown(path, user.pw_uid, user.pw_gid)
