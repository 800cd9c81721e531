"""One staff change to members, credentials or entitlements: the membership_ops call,
its signed change-log entry and the audit row commit together; the entry is published
to the devices after the commit (as the JSON API does)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import HTTPException
from pydantic import ValidationError
from sqlalchemy import Connection

from cloud_bridge import change_log
from cloud_bridge.db_schema import write_tx
from cloud_bridge.membership_ops import Conflict, Invalid, NotFound, Record
from cloud_bridge.web import audit
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.context import WebContext
from cloud_bridge.web.entitlement_forms import FieldError

T = TypeVar("T")


class FormError(Invalid):
    """A change refused for a reason the form shows back to the user; ``conflict``: it
    clashes with data that exists (a card already issued), else the data is invalid."""

    def __init__(self, message: str, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict


def first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else err["msg"]


def apply_change(ctx: WebContext, staff: Staff, action: str, target: str,
                 detail: dict[str, Any],
                 work: Callable[[Connection], tuple[T, list[Record]]]) -> T:
    try:
        with write_tx(ctx.engine) as conn:
            result, records = work(conn)
            entry = change_log.append(conn, staff.tenant, records)
            audit.record(conn, staff, action, target, {**detail, "version": entry.version})
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except FieldError:
        raise  # a form value: shown beside its field
    except (Conflict, Invalid) as exc:
        raise FormError(str(exc), conflict=isinstance(exc, Conflict)) from None
    ctx.feed.publish(entry)
    return result
