"""The release-signing key: an Ed25519 key of its own, never a tenant key (a tenant key
signs one tenant's membership data; this one vouches for software every tenant runs)."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


class ReleaseKeyError(Exception):
    """The key file is missing, unreadable or not an Ed25519 key."""


def create_key(path: Path) -> str:
    """A new key in ``path`` (0600, refused if it exists); returns its public half, base64."""
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ReleaseKeyError(f"{path} exists: a release key is never overwritten") from None
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(raw).decode() + "\n")
    return public_b64(key)


def load_key(path: Path) -> Ed25519PrivateKey:
    try:
        if path.stat().st_mode & 0o077:
            raise ReleaseKeyError(f"{path} is readable by others: chmod 600 {path}")
        raw = base64.b64decode(path.read_text().strip(), validate=True)
        return Ed25519PrivateKey.from_private_bytes(raw)
    except OSError as exc:
        raise ReleaseKeyError(f"cannot read the release key {path}: {exc.strerror}") from None
    except (binascii.Error, ValueError):
        raise ReleaseKeyError(f"{path} is not a base64 Ed25519 private key "
                              "(make one with: cloud-bridge release keygen)") from None


def public_b64(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
