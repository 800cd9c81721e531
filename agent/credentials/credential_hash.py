"""Keyed hashes of card UIDs and codes: what the store keeps instead of the UID itself."""

from __future__ import annotations

import hashlib
import hmac


def credential_hash(key: bytes, kind: str, value: str) -> bytes:
    """HMAC-SHA256(tenant key, "kind:value"). The bridge computes the same when it
    issues a credential, so UIDs never travel or rest in clear."""
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).digest()


def hash_ref(digest: bytes) -> str:
    """A short, non-reversible reference for logs and events (first 8 bytes, hex)."""
    return digest[:8].hex()
