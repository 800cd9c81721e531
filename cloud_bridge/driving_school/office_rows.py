"""Rows of the office's tables, always within the signed-in staff member's tenant: one
row or 404, a listing, and saving a posted form as a row (candidates, instructors,
vehicles and courses are stored alike: validate, insert or update; a refused form comes
back as one message per field, for the page to show beside the fields)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from sqlalchemy import Engine, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.web.form_errors import FieldErrors
from contracts.i18n import gettext as _


def one(engine: Engine, table: Table, tenant: str, row_id: int) -> dict[str, Any]:
    with read_tx(engine) as conn:
        row = conn.execute(select(table).where(table.c.tenant == tenant,
                                               table.c.id == row_id)).mappings().first()
    if row is None:
        raise HTTPException(404, "not found")
    return dict(row)


def exists(engine: Engine, table: Table, tenant: str, row_id: int | None) -> bool:
    if row_id is None:
        return True
    with read_tx(engine) as conn:
        return conn.execute(select(table.c.id).where(
            table.c.tenant == tenant, table.c.id == row_id)).first() is not None


def listing(engine: Engine, table: Table, tenant: str, *order: Any) -> list[dict[str, Any]]:
    with read_tx(engine) as conn:
        return [dict(r) for r in conn.execute(
            select(table).where(table.c.tenant == tenant).order_by(*order)).mappings()]


# a form's columns, validated and checked against the tenant's rows: (values, {}) or
# (None, {field: message})
FormValues = Callable[[Engine, Mapping[str, Any], str],
                      tuple[dict[str, Any] | None, FieldErrors]]


@dataclass(frozen=True, slots=True)
class OfficeForm:
    """An office form stored as one row of ``table``."""

    table: Table
    values: FormValues
    # the field and the message for a unique-key clash; None: none expected
    in_use: tuple[str, str] | None = None


def save_row(engine: Engine, kind: OfficeForm, tenant: str, form: Mapping[str, Any], *,
             row_id: int | None = None, extra: Mapping[str, Any] | None = None
             ) -> tuple[int | None, FieldErrors]:
    """Insert (``row_id`` None, with ``extra`` columns) or update the row: its id, or
    None and the messages for the fields."""
    table = kind.table
    values, errors = kind.values(engine, form, tenant)
    if values is None:
        return None, errors
    values = {**values, **(extra or {})}
    try:
        with write_tx(engine) as conn:
            if row_id is None:
                row_id = int(conn.execute(insert(table).values(tenant=tenant, **values)
                                          .returning(table.c.id)).scalar_one())
            else:
                conn.execute(update(table).where(table.c.tenant == tenant,
                                                 table.c.id == row_id).values(**values))
    except IntegrityError:
        if kind.in_use is None:
            raise
        field, message = kind.in_use
        return None, {field: _(message)}
    return row_id, {}
