"""The bridge's error root: every error the bridge raises on purpose is a ``BridgeError``.

Each class names what went wrong by meaning and carries the HTTP status it stands for;
the app maps them to responses in ONE place (``cloud_bridge/api/app.py``: JSON under
``/api``), and the ``cloud-bridge`` CLI maps any of them to exit code 2 with one line.
The message is for the person who reads it: it says what is wrong and what to do.

Modules keep their own classes (``TenantKeyError``, ``CaError``, ``AbsenceError`` …) where
a caller needs to tell them apart; those derive from the class of their meaning here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""

    status: ClassVar[int] = 500
    # extra response headers (WWW-Authenticate, Retry-After ...)
    headers: ClassVar[Mapping[str, str] | None] = None


class Invalid(BridgeError, ValueError):
    """The request or the data cannot be accepted as it is; the text says why."""

    status = 422


class NotFound(BridgeError, LookupError):
    """What was named does not exist (in this tenant)."""

    status = 404


class Conflict(BridgeError):
    """The change clashes with what exists (an id or a card already in use)."""

    status = 409


class Unauthorized(BridgeError):
    """No valid credentials were given."""

    status = 401


class Forbidden(BridgeError):
    """The credentials given do not allow this."""

    status = 403


class Unavailable(BridgeError):
    """The bridge cannot do this now or is not set up for it (keys, CA, database)."""

    status = 503
