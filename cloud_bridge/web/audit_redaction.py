"""Keeps secrets and card numbers out of the audit log's detail column."""

from __future__ import annotations

from typing import Any

_SECRET_KEYS = frozenset({"password", "pin", "uid", "card_uid", "code", "token", "secret"})


def redact(detail: dict[str, Any]) -> dict[str, Any]:
    return {k: ("[redacted]" if k.lower() in _SECRET_KEYS else v) for k, v in detail.items()}
