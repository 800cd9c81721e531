"""Keyed hashes of card UIDs and codes: what the store keeps instead of the UID itself."""

from __future__ import annotations

import hashlib
import hmac


def credential_hash(key: bytes, kind: str, value: str) -> str:
    """HMAC-SHA256(tenant key, "kind:value") in lower-case hex. The bridge computes the
    same when it issues a credential, so UIDs never travel or rest in clear. Hex rather
    than bytes because snapshots load it straight from JSON inside SQLite."""
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def hash_ref(digest: str) -> str:
    """A short, non-reversible reference for logs and events (first 8 bytes)."""
    return digest[:16]
