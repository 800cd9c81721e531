"""Rows of the office's tables, always within the signed-in staff member's tenant: one
row or 404, a listing, and saving a posted form as a row (candidates, vehicles and
courses are stored alike: validate, insert or update, a reason back to the form when
it is refused)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import Engine, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.driving_school.forms import form_error
from cloud_bridge.driving_school.office_pages import back


def one(engine: Engine, table: Table, tenant: str, row_id: int) -> dict[str, Any]:
    with read_tx(engine) as conn:
        row = conn.execute(select(table).where(table.c.tenant == tenant,
                                               table.c.id == row_id)).mappings().first()
    if row is None:
        raise HTTPException(404, "not found")
    return dict(row)


def listing(engine: Engine, table: Table, tenant: str, *order: Any) -> list[dict[str, Any]]:
    with read_tx(engine) as conn:
        return [dict(r) for r in conn.execute(
            select(table).where(table.c.tenant == tenant).order_by(*order)).mappings()]


# a form's columns, validated (ValidationError) and checked against the tenant's rows
FormValues = Callable[[Engine, dict[str, Any], str], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class OfficeForm:
    """An office form stored as one row of ``table``."""

    table: Table
    values: FormValues
    in_use: str | None = None  # the reason for a unique-key clash; None: none expected


def save_row(engine: Engine, kind: OfficeForm, tenant: str, form: dict[str, Any], *,
             error_path: str, done: str, row_id: int | None = None,
             extra: Mapping[str, Any] | None = None) -> RedirectResponse:
    """Insert (``row_id`` None, with ``extra`` columns) or update the row, then 303 to
    ``done`` ("{id}" becomes the row's id); a refused form goes back to ``error_path``
    with the reason."""
    table = kind.table
    try:
        values = {**kind.values(engine, form, tenant), **(extra or {})}
        with write_tx(engine) as conn:
            if row_id is None:
                row_id = int(conn.execute(insert(table).values(tenant=tenant, **values)
                                          .returning(table.c.id)).scalar_one())
            else:
                conn.execute(update(table).where(table.c.tenant == tenant,
                                                 table.c.id == row_id).values(**values))
    except ValidationError as exc:
        return back(error_path, error=form_error(exc))
    except IntegrityError:
        if kind.in_use is None:
            raise
        return back(error_path, error=kind.in_use)
    return back(done.format(id=row_id))
