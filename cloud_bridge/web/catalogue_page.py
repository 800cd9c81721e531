"""The till catalogue page (issue 22): the tenant's products with price, VAT rate,
category and barcode; the manager (administrator) adds, edits, retires and offers
products again, the counter staff look them up. Every saved change makes a new catalogue
version (cloud_bridge/catalogue/store.py) that the bridge signs and hands to the tills
(cloud_bridge/catalogue/publisher.py)."""

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection

from cloud_bridge.catalogue.store import (
    CatalogueConflict,
    get_product,
    get_version,
    list_products,
    save_product,
    set_active,
)
from cloud_bridge.db_schema import read_tx
from cloud_bridge.web import audit
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.catalogue_form import (
    BARCODE_PATTERN,
    CATEGORY_MAX,
    NAME_MAX,
    check_product,
    form_values,
    ticket_options,
    vat_label,
    vat_options,
)
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.form_errors import FieldErrors
from cloud_bridge.web.guards import need, route_meta
from cloud_bridge.web.nav import NAV, NavItem
from cloud_bridge.web.rendering import render
from cloud_bridge.web.roles import allowed
from contracts.i18n import N_
from contracts.i18n import gettext as _

NAV.append(NavItem(N_("Till catalogue"), "/catalogue", "catalogue.view"))

router = APIRouter(prefix="/t/{tenant}")
Viewer = Annotated[Staff, Depends(need("catalogue.view"))]
Editor = Annotated[Staff, Depends(need("catalogue.edit"))]
ProductPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]
Saved = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
LIMITS = {"name": NAME_MAX, "category": CATEGORY_MAX}


def _page(request: Request, staff: Staff, ctx: Ctx, values: dict[str, str],
          errors: FieldErrors, status: int = 200, saved: int | None = None) -> Response:
    with read_tx(ctx.engine) as conn:
        products = list_products(conn, staff.tenant)
        newest = get_version(conn, staff.tenant)
    return render(request, "catalogue.html", staff, status_code=status, products=products,
                  version=newest.version if newest else None, values=values, errors=errors,
                  saved=saved, can_edit=allowed(staff.role, "catalogue.edit"),
                  vat_rates=vat_options(), vat_label=vat_label, limits=LIMITS,
                  ticket_kinds=ticket_options(),
                  barcode_pattern=BARCODE_PATTERN)


def _trace(staff: Staff, action: str, detail: dict[str, Any]) -> Any:
    def trace(conn: Connection, product_id: str, version: int) -> None:
        audit.record(conn, staff, action, product_id, {**detail, "version": version})
    return trace


def _conflict_errors(exc: CatalogueConflict) -> FieldErrors:
    if exc.field == "barcode":
        return {"barcode": _("Product %(name)s already has this barcode.") % {
            "name": str(exc)}}
    return {"__all__": _("Someone else changed the catalogue at the same moment; "
                         "try again.")}


@router.get("/catalogue", **route_meta("catalogue.view"))
def catalogue_page(request: Request, staff: Viewer, ctx: Ctx, saved: Saved = None
                   ) -> Response:
    return _page(request, staff, ctx, {"vat": "22"}, {}, saved=saved)


@router.post("/catalogue", **route_meta("catalogue.edit"))
async def add_product(request: Request, staff: Editor, ctx: Ctx) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}
    fields, errors = check_product(form)
    if fields is not None:
        try:
            _id, version = save_product(
                ctx.engine, staff.tenant, None, fields, by=staff.username,
                now_ms=int(time.time() * 1000),
                audit=_trace(staff, "catalogue.add", {"name": fields.name}))
        except CatalogueConflict as exc:
            errors = _conflict_errors(exc)
        else:
            return RedirectResponse(f"/t/{staff.tenant}/catalogue?saved={version}", 303)
    return _page(request, staff, ctx, form, errors, status=422)


def _product_page(request: Request, staff: Staff, ctx: Ctx, product_id: str,
                  values: dict[str, str] | None, errors: FieldErrors, status: int = 200
                  ) -> Response:
    with read_tx(ctx.engine) as conn:
        product = get_product(conn, staff.tenant, product_id)
    if product is None:
        raise HTTPException(404, "no such product")
    return render(request, "catalogue_product.html", staff, status_code=status,
                  product=product, values=values or form_values(product), errors=errors,
                  can_edit=allowed(staff.role, "catalogue.edit"), vat_rates=vat_options(),
                  ticket_kinds=ticket_options(),
                  vat_label=vat_label, limits=LIMITS, barcode_pattern=BARCODE_PATTERN)


@router.get("/catalogue/{product_id}", **route_meta("catalogue.view"))
def product_page(request: Request, product_id: ProductPath, staff: Viewer, ctx: Ctx
                 ) -> Response:
    return _product_page(request, staff, ctx, product_id, None, {})


@router.post("/catalogue/{product_id}", **route_meta("catalogue.edit"))
async def edit_product(request: Request, product_id: ProductPath, staff: Editor, ctx: Ctx
                       ) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}
    fields, errors = check_product(form)
    if fields is not None:
        try:
            _id, version = save_product(
                ctx.engine, staff.tenant, product_id, fields, by=staff.username,
                now_ms=int(time.time() * 1000),
                audit=_trace(staff, "catalogue.edit", {"name": fields.name}))
        except CatalogueConflict as exc:
            errors = _conflict_errors(exc)
        except LookupError:
            raise HTTPException(404, "no such product") from None
        else:
            return RedirectResponse(f"/t/{staff.tenant}/catalogue?saved={version}", 303)
    return _product_page(request, staff, ctx, product_id, form, errors, status=422)


@router.post("/catalogue/{product_id}/active", **route_meta("catalogue.edit"))
async def toggle_product(request: Request, product_id: ProductPath, staff: Editor,
                         ctx: Ctx) -> Response:
    with read_tx(ctx.engine) as conn:
        product = get_product(conn, staff.tenant, product_id)
    if product is None:
        raise HTTPException(404, "no such product")
    active = not product.active
    try:
        version = set_active(ctx.engine, staff.tenant, product_id, active,
                             by=staff.username, now_ms=int(time.time() * 1000),
                             audit=_trace(staff, "catalogue.active", {"active": active}))
    except CatalogueConflict as exc:
        return _product_page(request, staff, ctx, product_id, None, _conflict_errors(exc),
                             status=409)
    except LookupError:
        raise HTTPException(404, "no such product") from None
    return RedirectResponse(f"/t/{staff.tenant}/catalogue?saved={version}", 303)
