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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.config import load_config
from agent.errors import EdgeError

CONFIG_NAME = "agent.toml"
ENROLMENT_NAME = "enrolment.json"
SERVICE_USER = "edge-agent"


class ProvisioningError(EdgeError):
    """Provisioning could not finish; nothing in the target folder was changed."""


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
        raise ProvisioningError(f"cannot reach the bridge at {bridge} ({exc}); check the URL "
                                "and the network (edge-agent doctor --bridge URL)") from None
    if reply.status_code == 200:
        return dict(reply.json())
    try:
        detail = reply.json().get("detail")
    except ValueError:
        detail = None
    messages = {404: "the bridge does not know this code (typo?)",
                409: "this code was already used", 410: "this code has expired",
                422: "the bridge refused the request"}
    text = detail if isinstance(detail, str) else messages.get(reply.status_code,
                                                               f"HTTP {reply.status_code}")
    raise ProvisioningError(f"enrolment refused: {text}")


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
) -> Provisioned:
    parts = urlsplit(bridge)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ProvisioningError(f"--bridge must be an https:// URL, got '{bridge}'")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ProvisioningError("the bridge URL must use https:// (keys travel over it); "
                                "plain http is accepted only for a bridge on this machine")
    target = target.resolve()
    config_path = target / CONFIG_NAME
    if config_path.exists() and not force:
        raise ProvisioningError(
            f"{config_path} exists: this device is already provisioned. Use --force to "
            "replace it (the old files are kept in a backup folder next to it)")

    key_pem, csr_pem = _new_key_and_csr()
    answer = _redeem(bridge, {"code": code, "csr_pem": csr_pem, "data_dir": data_dir},
                     ca_file, timeout_s)

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
            raise ProvisioningError("the bridge's config names another device; not installed")
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
