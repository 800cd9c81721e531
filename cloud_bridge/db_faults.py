"""Is a database error worth retrying? Decided by its cause, not its exception class.

*Transient*: the database is away or busy and the same statement can pass later
(connection lost, lock or statement timeout, serialization failure, deadlock, disk
full, out of memory). *Permanent*: the database refuses this very message (a value it
cannot hold, a constraint it breaks): retrying can never succeed, so the message is
refused and kept aside (cloud_bridge/quarantine.py) and the others go on.

What we cannot place is treated as transient and logged loudly: a missing table or a
privilege the operator has to grant is not the message's fault, and dropping messages
for it would lose data.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError, SQLAlchemyError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLite primary result codes (https://sqlite.org/rescode.html) that a message causes
_SQLITE_PERMANENT = {18, 19, 20, 25}  # TOOBIG, CONSTRAINT, MISMATCH, RANGE
# SQLSTATE classes that a message causes: data exception, integrity constraint
# violation, program limit exceeded (a value too large for the database)
_PG_PERMANENT_CLASSES = {"22", "23", "54"}


def is_permanent(exc: BaseException) -> bool:
    """True when this error is caused by the data of the statement itself."""
    if isinstance(exc, PoolTimeout):
        return False
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return False
        return _orig_is_permanent(exc.orig)
    if isinstance(exc, StatementError):
        # raised before the database saw the statement: a value that cannot be bound or
        # serialised (e.g. NaN in a JSON column) is the message's own fault
        return _unserialisable(exc.orig)
    return _unserialisable(exc)  # psycopg raises the serialiser's error bare


def _unserialisable(exc: BaseException | None) -> bool:
    """The JSON serialiser refused a value; any other ValueError/TypeError is a bug of
    ours, not the message's, and must not send messages to the quarantine."""
    return isinstance(exc, ValueError | TypeError) and "JSON" in str(exc)


def _orig_is_permanent(orig: BaseException | None) -> bool:
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _SQLITE_PERMANENT:
            return True
        # SQLITE_ERROR is generic: the JSON functions use it for a malformed value
        return code is not None and code & 0xFF == 1 and "JSON" in str(orig)
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and len(sqlstate) == 5:
        return sqlstate[:2] in _PG_PERMANENT_CLASSES
    return False


def cause(exc: BaseException) -> str:
    """A short name for logs and quarantine reasons (no parameters, no data)."""
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
    text = str(orig).splitlines()[0][:160] if str(orig) else ""
    return f"{type(orig).__name__}{f' {code}' if code else ''}: {text}"


def is_transient(exc: BaseException) -> bool:
    """A database fault that can pass: retry the same work later."""
    return isinstance(exc, SQLAlchemyError) and not is_permanent(exc)


def refusal_reason(exc: BaseException) -> str:
    """The quarantine reason for a statement the database refused for good."""
    text = cause(exc)
    if ("ux_events_tenant_id" in text or "ux_event_keys_tenant_id" in text
            or "events.tenant, events.id" in text):
        return "event id already stored under another seq (ids are unique per tenant)"
    return f"database refused it: {text}"
