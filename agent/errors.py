"""The agent's error hierarchy: each message says what is wrong and what to do."""

from __future__ import annotations


class EdgeError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(EdgeError):
    """The device config cannot be used; the message names the file and the key."""


class StoreError(EdgeError):
    """The local SQLite store is unusable (corrupt, wrong version, disk full)."""


class BadInput(EdgeError):
    """Something from outside (a reader, a socket client, a batch) was malformed."""


class SignatureError(BadInput):
    """Signed data did not verify against the configured public key."""
