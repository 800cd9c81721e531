"""The agent's error hierarchy: each message says what is wrong and what to do."""

from __future__ import annotations

from contracts.errors import BadInput, SignatureError

__all__ = ["BadInput", "ConfigError", "EdgeError", "SignatureError", "StartupError", "StoreError"]


class EdgeError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(EdgeError):
    """The device config cannot be used; the message names the file and the key."""


class StoreError(EdgeError):
    """The local SQLite store is unusable (corrupt, wrong version, disk full)."""


class StartupError(EdgeError):
    """Something the agent needs at start-up (a port, the watchdog, a folder) is unusable."""
