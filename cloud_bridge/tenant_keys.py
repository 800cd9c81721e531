"""Per-tenant key material on disk: the Ed25519 key that signs membership data and the
HMAC key that turns card UIDs and codes into keyed hashes.

Layout (directory 0700, files 0600), each file base64 text so that a device config can
point at the same file (``credential_hmac_key = "file:…"``)::

    <keys-dir>/<tenant>/signing.key          Ed25519 private key, raw 32 bytes
    <keys-dir>/<tenant>/public.key           Ed25519 public key, raw 32 bytes
    <keys-dir>/<tenant>/credential_hmac.key  HMAC key, 32 random bytes

Key bytes are never logged; errors name the file and what to do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from cloud_bridge.errors import Unavailable

log = logging.getLogger(__name__)

TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SIGNING_FILE = "signing.key"
PUBLIC_FILE = "public.key"
HMAC_FILE = "credential_hmac.key"
# SHA-256 of each API token of the tenant ("<hex> <label>" per line); the tokens
# themselves are shown once when made and stored nowhere
API_TOKENS_FILE = "api-tokens"


class TenantKeyError(Unavailable):
    """A tenant's keys are missing or unreadable; the message says what to do."""


@dataclass(frozen=True, slots=True)
class TenantKeys:
    tenant: str
    signing_key: Ed25519PrivateKey
    hmac_key: bytes

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.signing_key.public_key()

    @property
    def public_key_raw(self) -> bytes:
        return self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)

    def __repr__(self) -> str:  # never print key material, not even by accident
        return f"TenantKeys(tenant={self.tenant!r})"


@dataclass(frozen=True, slots=True)
class CreatedTenant:
    tenant: str
    directory: Path
    public_key_b64: str
    hmac_key_path: Path


def check_tenant_id(tenant: str) -> str:
    if not TENANT_ID.match(tenant):
        raise TenantKeyError(
            f"tenant id {tenant[:80]!r} is not valid: use 1-64 letters, digits, '_', '.', '-', "
            "starting with a letter or digit")
    return tenant


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    os.chmod(path, 0o600)  # explicit: O_CREAT's mode is filtered by the umask


def create_tenant(keys_dir: Path, tenant: str) -> CreatedTenant:
    """Generate the tenant's keys; refuses to overwrite existing ones."""
    check_tenant_id(tenant)
    directory = keys_dir / tenant
    if (directory / SIGNING_FILE).exists() or (directory / HMAC_FILE).exists():
        raise TenantKeyError(
            f"tenant {tenant!r} already has keys in {directory}; replacing them would cut off "
            "every device of the tenant. Move the directory away first if you really mean it.")
    keys_dir.mkdir(parents=True, exist_ok=True)
    directory.mkdir(mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    signing = Ed25519PrivateKey.generate()
    raw_private = signing.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    raw_public = signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    public_b64 = base64.b64encode(raw_public).decode()
    _write_secret(directory / SIGNING_FILE, base64.b64encode(raw_private).decode())
    _write_secret(directory / HMAC_FILE, base64.b64encode(secrets.token_bytes(32)).decode())
    _write_secret(directory / PUBLIC_FILE, public_b64)
    return CreatedTenant(tenant, directory, public_b64, directory / HMAC_FILE)


def _read_b64(path: Path, expected_len: int, tenant: str) -> bytes:
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except FileNotFoundError:
        raise TenantKeyError(
            f"tenant {tenant!r} has no keys ({path} is missing): run "
            f"'cloud-bridge tenant create {tenant} --keys-dir {path.parent.parent}'") from None
    except OSError as exc:
        raise TenantKeyError(f"cannot read {path}: {exc.strerror}; check its owner and "
                             "mode (the bridge's user needs read access)") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("key file %s is accessible to group/others: chmod 600 it", path)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise TenantKeyError(f"{path} does not hold base64 text") from None
    if len(raw) != expected_len:
        raise TenantKeyError(f"{path} must decode to {expected_len} bytes, not {len(raw)}")
    return raw


class TenantKeyStore:
    """Loads tenants' keys from ``keys_dir`` on first use and caches them."""

    def __init__(self, keys_dir: Path) -> None:
        self.keys_dir = keys_dir
        self._cache: dict[str, TenantKeys] = {}
        self._lock = threading.Lock()

    def get(self, tenant: str) -> TenantKeys:
        cached = self._cache.get(tenant)
        if cached is not None:
            return cached
        check_tenant_id(tenant)
        directory = self.keys_dir / tenant
        seed = _read_b64(directory / SIGNING_FILE, 32, tenant)
        hmac_key = _read_b64(directory / HMAC_FILE, 32, tenant)
        keys = TenantKeys(tenant, Ed25519PrivateKey.from_private_bytes(seed), hmac_key)
        with self._lock:
            self._cache[tenant] = keys
        return keys

    def api_token_ok(self, tenant: str, token: str) -> bool:
        """Whether ``token`` is one of the tenant's own API tokens (read on every call, so
        a token removed from the file stops working at once)."""
        if not TENANT_ID.match(tenant):
            return False
        try:
            lines = (self.keys_dir / tenant / API_TOKENS_FILE).read_text().splitlines()
        except OSError:
            return False
        digest = token_digest(token)
        return any(hmac.compare_digest(line.split(" ", 1)[0], digest) for line in lines)

    def exists(self, tenant: str) -> bool:
        if tenant in self._cache:
            return True
        return bool(TENANT_ID.match(tenant)) and (self.keys_dir / tenant / SIGNING_FILE).is_file()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_api_token(keys_dir: Path, tenant: str, label: str) -> str:
    """A new API token that opens the JSON API of this tenant only; returns it (once)."""
    check_tenant_id(tenant)
    directory = keys_dir / tenant
    if not (directory / SIGNING_FILE).is_file():
        raise TenantKeyError(f"tenant {tenant!r} has no keys in {directory}: create it first")
    if not re.fullmatch(r"[A-Za-z0-9 _.@:-]{1,64}", label):
        raise TenantKeyError("the label may hold letters, digits and ' _.@:-' (1-64)")
    token = "et_" + secrets.token_urlsafe(32)
    path = directory / API_TOKENS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(f"{token_digest(token)} {label}\n")
    return token
