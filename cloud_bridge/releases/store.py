"""The release folder: ``<folder>/<channel>/<version>/`` holds the wheels and
``manifest.json`` (the signed envelope). A release is written under a temporary name and
renamed into place, so a half-published release is never served."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contracts.release_manifest import (
    CHANNELS,
    ReleaseFile,
    ReleaseManifest,
    open_manifest,
    sign_manifest,
    version_key,
)


class ReleaseError(Exception):
    """A release cannot be published or found; the text says what to fix."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class ReleaseStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def release_dir(self, channel: str, version: str) -> Path:
        return self.folder / channel / version

    def publish(self, key: Ed25519PrivateKey, channel: str, version: str, wheels: list[Path],
                requirement: str, min_config_schema: int = 1) -> ReleaseManifest:
        if channel not in CHANNELS:
            raise ReleaseError(f"channel '{channel}': use one of {', '.join(CHANNELS)}")
        version_key(version)
        final = self.release_dir(channel, version)
        if final.exists():
            raise ReleaseError(f"{channel} {version} is already published: a release never "
                               "changes; publish a new version")
        missing = [str(w) for w in wheels if not w.is_file() or w.suffix != ".whl"]
        if missing or not wheels:
            raise ReleaseError(f"not wheel files: {', '.join(missing) or '(none given)'}")
        manifest = ReleaseManifest(
            channel=channel, version=version, requirement=requirement,  # type: ignore[arg-type]
            min_config_schema=min_config_schema, created_ms=int(time.time() * 1000),
            files=[ReleaseFile(name=w.name, sha256=_sha256(w), size=w.stat().st_size)
                   for w in wheels])
        tmp = final.with_name(f".{version}.publishing")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for w in wheels:
            shutil.copyfile(w, tmp / w.name)
        (tmp / "manifest.json").write_bytes(sign_manifest(key, manifest))
        tmp.rename(final)
        return manifest

    def manifest(self, channel: str, version: str, key: Ed25519PublicKey) -> ReleaseManifest:
        path = self.release_dir(channel, version) / "manifest.json"
        if not path.is_file():
            raise ReleaseError(f"{channel} {version} is not published (cloud-bridge release "
                               "list)")
        return open_manifest(path.read_bytes(), key)

    def versions(self, channel: str) -> list[str]:
        folder = self.folder / channel
        if not folder.is_dir():
            return []
        out = [p.name for p in folder.iterdir()
               if not p.name.startswith(".") and (p / "manifest.json").is_file()]
        return sorted(out, key=version_key)
