"""Download a release over HTTPS and prove it: the manifest's Ed25519 signature with the
release public key, then every wheel's size and SHA-256 while it streams to disk.

The files are public on the bridge (``/releases/{channel}/{version}/...``): the device
needs no credentials to fetch them, because the signature, not the server, is what it
trusts. HTTPS with the configured CA keeps a network attacker from even offering junk.
"""

from __future__ import annotations

import hashlib
import shutil
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent import fault_points
from agent.update.layout import write_atomic
from contracts.errors import BadInput, SignatureError
from contracts.release_manifest import MAX_MANIFEST_BYTES, ReleaseManifest, open_manifest

CHUNK = 64 * 1024
TIMEOUT_S = 30.0


class FetchError(Exception):
    """The release could not be downloaded or did not verify; the text says which."""


def _context(ca_file: Path | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def _open(url: str, ca_file: Path | None) -> Any:  # the response, a context manager
    if urlsplit(url).scheme != "https":
        raise FetchError(f"{url}: releases are fetched over https only")
    try:
        return urllib.request.urlopen(url, timeout=TIMEOUT_S, context=_context(ca_file))
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"{url}: {reason}") from None


def fetch_manifest(url: str, key: Ed25519PublicKey, ca_file: Path | None) -> tuple[
        ReleaseManifest, bytes]:
    with _open(url, ca_file) as resp:
        raw = resp.read(MAX_MANIFEST_BYTES + 1)
    try:
        return open_manifest(raw, key), raw
    except (SignatureError, BadInput) as exc:
        raise FetchError(str(exc)) from None


def _download(url: str, dest: Path, size: int, sha256: str, ca_file: Path | None) -> None:
    digest = hashlib.sha256()
    got = 0
    part = dest.with_name(dest.name + ".part")
    with _open(url, ca_file) as resp, open(part, "wb") as out:
        while chunk := resp.read(CHUNK):
            got += len(chunk)
            if got > size:
                raise FetchError(f"{dest.name}: longer than the manifest's {size} bytes")
            digest.update(chunk)
            out.write(chunk)
    if got != size:
        raise FetchError(f"{dest.name}: {got} bytes, the manifest says {size}")
    if digest.hexdigest() != sha256:
        raise FetchError(f"{dest.name}: SHA-256 {digest.hexdigest()[:16]}… does not match "
                         f"the signed manifest's {sha256[:16]}…")
    part.rename(dest)


def fetch_release(manifest_url: str, key: Ed25519PublicKey, ca_file: Path | None,
                  staging: Path) -> ReleaseManifest:
    """Manifest and wheels into ``staging/<version>/wheels``; FetchError if anything fails
    to verify (the folder is then removed)."""
    manifest, raw = fetch_manifest(manifest_url, key, ca_file)
    folder = staging / manifest.version
    shutil.rmtree(folder, ignore_errors=True)
    wheels = folder / "wheels"
    wheels.mkdir(parents=True)
    try:
        for f in manifest.files:
            _download(urljoin(manifest_url, f.name), wheels / f.name, f.size, f.sha256, ca_file)
            fault_points.reached("update.download")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    write_atomic(folder / "manifest.json", raw)
    return manifest
