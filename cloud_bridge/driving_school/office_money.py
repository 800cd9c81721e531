"""The office's money pages: the price list, issuing orders, pro-forma and advance
invoices, invoices and credit notes (numbered per kind, business premise and year,
``billing.issue``), a document's printable page with its fiscal state, sending a cash or
card payment to the school's till for fiscal verification (``fiscal_link``) and the
accounting export (``accounting_export.EXPORTERS``).

Viewing needs ``receipts.view`` (administrator, accountant, reception); issuing, the
price list and the till ``members.edit`` (administrator, reception)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.exc import IntegrityError

from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.driving_school import billing, fiscal_link
from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.accounting_export import EXPORTERS
from cloud_bridge.driving_school.deps import School, SchoolSettings
from cloud_bridge.driving_school.money_forms import (
    KIND_LABELS,
    LINE_ROWS,
    PAYMENT_LABELS,
    PriceForm,
    check_document,
    check_till,
)
from cloud_bridge.driving_school.office_pages import back, form_of, page, today
from cloud_bridge.driving_school.office_rows import listing
from cloud_bridge.driving_school.schema import candidates
from cloud_bridge.errors import Invalid
from cloud_bridge.param_bounds import RowIdPath
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.catalogue_form import vat_label, vat_options
from cloud_bridge.web.form_errors import validate_form
from contracts.i18n import gettext as _

router = APIRouter(prefix=BASE, include_in_schema=False)
VIEW, EDIT = "receipts.view", "members.edit"


def _labels() -> dict[str, Any]:
    return {"kind_labels": KIND_LABELS, "payment_labels": PAYMENT_LABELS,
            "vat_label": vat_label, "vat_options": vat_options,
            "number": billing.doc_number}


def prices_page(request: Request, school: SchoolSettings, staff: Staff, status: int = 200,
                **ctx: Any) -> HTMLResponse:
    with read_tx(school.engine) as conn:
        rows = billing.price_list(conn, staff.tenant)
    ctx.setdefault("values", {"vat": "22"})
    return page(request, "prices.html", staff, status, rows=rows, **_labels(), **ctx)


@router.get("/prices")
async def prices_list(request: Request, school: School) -> HTMLResponse:
    return prices_page(request, school, await school.access.staff(request, VIEW))


@router.post("/prices")
async def prices_add(request: Request, school: School) -> Response:
    staff = await school.access.staff(request, EDIT)
    form = await form_of(request)
    entry, errors = validate_form(PriceForm, form)
    if entry is None:
        return prices_page(request, school, staff, 422, values=form, errors=errors)
    with write_tx(school.engine) as conn:
        billing.add_price(conn, staff.tenant, entry.name, entry.price, entry.vat)
    return back("/prices", saved="1")


@router.post("/prices/{price_id}/active")
async def prices_toggle(request: Request, school: School, price_id: RowIdPath) -> Response:
    staff = await school.access.staff(request, EDIT)
    with write_tx(school.engine) as conn:
        if not billing.toggle_price(conn, staff.tenant, price_id):
            raise HTTPException(404, "not found")
    return back("/prices", saved="1")


def documents_page(request: Request, school: SchoolSettings, staff: Staff,
                   status: int = 200, **ctx: Any) -> HTMLResponse:
    with read_tx(school.engine) as conn:
        docs = billing.documents_of(conn, staff.tenant)
        entries = billing.price_list(conn, staff.tenant, active_only=True)
    people = {p["id"]: p for p in listing(school.engine, candidates, staff.tenant,
                                         candidates.c.last_name, candidates.c.first_name)}
    ctx.setdefault("values", {"kind": "invoice", "premise": "P1", "quantity_1": "1"})
    return page(request, "documents.html", staff, status, docs=docs, people=people,
                entries=entries, line_rows=LINE_ROWS, exporters=sorted(EXPORTERS),
                year=int(today()[:4]),
                invoices=[d for d in docs if d["kind"] == "invoice"], **_labels(), **ctx)


@router.get("/documents")
async def documents_list(request: Request, school: School) -> HTMLResponse:
    return documents_page(request, school, await school.access.staff(request, VIEW))


@router.post("/documents")
async def documents_issue(request: Request, school: School) -> Response:
    staff = await school.access.staff(request, EDIT)
    form = await form_of(request)
    with read_tx(school.engine) as conn:
        entries = {p["id"]: p for p in billing.price_list(conn, staff.tenant,
                                                           active_only=True)}
    head, lines, errors = check_document(form, entries)
    people = {p["id"] for p in listing(school.engine, candidates, staff.tenant)}
    if head is not None and head.candidate_id not in people:
        head, errors = None, {"candidate_id": _("Choose one of the offered options.")}
    if head is None:
        return documents_page(request, school, staff, 422, values=form, errors=errors)
    try:
        with write_tx(school.engine) as conn:
            doc = billing.issue(conn, staff.tenant, head.kind,  # type: ignore[arg-type]
                                head.premise, head.candidate_id, lines, staff.username,
                                int(today()[:4]), payment=head.payment,
                                refers_to=head.refers_to)
    except Invalid:
        return documents_page(request, school, staff, 422, values=form, errors={
            "refers_to": _("A credit note corrects an invoice of this school.")})
    except IntegrityError:  # another clerk took the number at the same instant
        return documents_page(request, school, staff, 409, values=form, errors={
            "__all__": _("Another document took this number just now; press Issue "
                         "again.")})
    return back(f"/documents/{doc['id']}")


def _document(school: SchoolSettings, staff: Staff, doc_id: int) -> dict[str, Any]:
    with read_tx(school.engine) as conn:
        doc = billing.one_document(conn, staff.tenant, doc_id)
    if doc is None:
        raise HTTPException(404, "not found")
    return fiscal_link.refresh(school.engine, staff.tenant, doc)


def document_page(request: Request, school: SchoolSettings, staff: Staff, doc_id: int,
                  status: int = 200, **ctx: Any) -> HTMLResponse:
    doc = _document(school, staff, doc_id)
    person = next((p for p in listing(school.engine, candidates, staff.tenant)
                   if p["id"] == doc["candidate_id"]), None)
    with read_tx(school.engine) as conn:
        corrected = (billing.one_document(conn, staff.tenant, doc["refers_to"])
                     if doc["refers_to"] else None)
    return page(request, "document.html", staff, status, doc=doc, person=person,
                corrected=corrected, vat=billing.vat_summary(doc),
                can_till=fiscal_link.can_fiscalise(doc) and school.publisher is not None
                and not doc.get("fiscal_invoice_id"), **_labels(), **ctx)


@router.get("/export/{fmt}")
async def documents_export(request: Request, school: School,
                           fmt: Annotated[str, PathParam(max_length=40)],
                           year: Annotated[int | None, Query(ge=2000, le=2999)] = None
                           ) -> Response:
    """The documents of a year (this year by default) in the chosen format."""
    staff = await school.access.staff(request, VIEW)
    year = year or int(today()[:4])
    exporter = EXPORTERS.get(fmt)
    if exporter is None:
        raise HTTPException(404, _("No such export format."))
    with read_tx(school.engine) as conn:
        docs = billing.documents_of(conn, staff.tenant, year, limit=1_000_000)
    docs = [fiscal_link.refresh(school.engine, staff.tenant, d) for d in reversed(docs)]
    name = f"{exporter.name}-{staff.tenant}-{year}.{exporter.suffix}"
    return Response(exporter.export(docs), media_type=exporter.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/documents/{doc_id}")
async def document_show(request: Request, school: School, doc_id: RowIdPath,
                        sent: str = "") -> HTMLResponse:
    staff = await school.access.staff(request, VIEW)
    device = ""
    with read_tx(school.engine) as conn:
        doc = billing.one_document(conn, staff.tenant, doc_id)
        if doc is not None and doc["refers_to"]:  # a credit note: the invoice's till
            invoice = billing.one_document(conn, staff.tenant, doc["refers_to"])
            device = (invoice or {}).get("fiscal_device") or ""
    return document_page(request, school, staff, doc_id, sent=sent[:40],
                         values={"device": device, "operator_tax_number": ""})


@router.post("/documents/{doc_id}/till")
async def document_to_till(request: Request, school: School, doc_id: RowIdPath
                           ) -> Response:
    staff = await school.access.staff(request, EDIT)
    if school.publisher is None:
        raise HTTPException(503, _("This server has no link to the office devices."))
    form = await form_of(request)
    till, errors = check_till(form)
    if till is None:
        return document_page(request, school, staff, doc_id, 422, values=form,
                             errors=errors)
    doc = _document(school, staff, doc_id)
    try:
        request_id = fiscal_link.send_to_till(
            school.engine, school.publisher, school.prefix, staff.tenant, doc, till.device,
            staff.username, int(till.operator_tax_number),
            lifetimes=school.command_lifetimes)
    except Invalid:
        return document_page(request, school, staff, doc_id, 409, values=form,
                             error=_("This document cannot go to the till (already "
                                     "numbered there, not paid in cash or by card, or a "
                                     "credit note whose invoice was not paid at this "
                                     "till)."))
    return back(f"/documents/{doc_id}", sent=request_id)
