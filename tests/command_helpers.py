"""Test helper: an expiry for a command a test sends itself (contracts/command_expiry.py)."""

from __future__ import annotations

from contracts.command_expiry import wall_ms


def expires_soon(seconds: int = 30) -> int:
    """UTC epoch ms ``seconds`` from now: valid for every command class."""
    return wall_ms() + seconds * 1000
