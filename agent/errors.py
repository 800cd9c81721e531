"""The agent's error hierarchy: each message says what is wrong and what to do."""

from __future__ import annotations

from contracts.errors import BadInput, ContractError, SignatureError
from drivers.errors import DriverError

__all__ = ["DEVICE_ERRORS", "BadInput", "ConfigError", "EdgeError", "SignatureError",
           "StartupError", "StoreError"]


class EdgeError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(EdgeError):
    """The device config cannot be used; the message names the file and the key."""


class StoreError(EdgeError):
    """The local SQLite store is unusable (corrupt, wrong version, disk full)."""


class StartupError(EdgeError):
    """Something the agent needs at start-up (a port, the watchdog, a folder) is unusable."""


# Every error the device side raises on purpose: the agent's own, the drivers' (which
# cannot import upward) and the wire contracts'. agent/cli_errors.py maps them to exit
# codes; the doctor reports them as findings.
DEVICE_ERRORS: tuple[type[Exception], ...] = (EdgeError, DriverError, ContractError)
