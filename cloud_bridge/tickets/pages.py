"""Staff pages for tickets and vouchers (``/t/{tenant}/tickets``): the list with filters and
the liabilities figure, the issue form, a ticket's page (QR, PDF, balance, uses, refund),
and the buyer's secret PDF link (``/ticket-pdf/...``, no login)."""

import hmac
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, select

from cloud_bridge.db_schema import devices, read_tx, write_tx
from cloud_bridge.errors import Conflict, NotFound
from cloud_bridge.tickets import ledger
from cloud_bridge.tickets.documents import KIND_LABELS, qr_png, short_id, ticket_pdf
from cloud_bridge.tickets.forms import FORM_KINDS, LABEL_MAX, check_ticket_form
from cloud_bridge.tickets.notice import link_token
from cloud_bridge.tickets.operations import TicketDesk
from cloud_bridge.tickets.pos_sale import VAT_RATES, sale_receipt, sell_on_pos
from cloud_bridge.web import audit
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.context import WebContext
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.form_errors import FieldErrors, validate_form
from cloud_bridge.web.guards import need, route_meta
from cloud_bridge.web.rendering import render
from contracts.i18n import N_
from contracts.i18n import gettext as _
from contracts.ticket_token import TicketKind

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
TicketId = Annotated[str, Path(pattern=UUID_PATTERN)]
STATE_LABELS = {"valid": N_("valid"), "not_yet_valid": N_("not valid yet"),
                "used_up": N_("used up"), "expired": N_("expired"),
                "refunded": N_("refunded")}
router = APIRouter()
Viewer = Annotated[Staff, Depends(need("receipts.view"))]
Clerk = Annotated[Staff, Depends(need("members.edit"))]


class SellForm(BaseModel):
    """Selling on a fiscal receipt at the site's POS device (pos_sale.py)."""

    model_config = ConfigDict(str_strip_whitespace=True)
    device: Annotated[str, Field(min_length=1, max_length=64,
                                 pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    payment: Literal["cash", "card"]
    vat: Literal["22", "9.5", "5", "exempt"]
    operator_name: Annotated[str, Field(min_length=1, max_length=40)]
    operator_tax_number: Annotated[int, Field(ge=10_000_000, le=99_999_999)]


def tenant_devices(conn: Connection, tenant: str) -> list[str]:
    return [str(d) for d in conn.execute(select(devices.c.device).where(
        devices.c.tenant == tenant).order_by(devices.c.device)).scalars()]


def desk(ctx: WebContext) -> TicketDesk:
    return TicketDesk(ctx.engine, ctx.keys, ctx.feed, ctx.notifier, ctx.member_link_key)


def _audit(staff: Staff) -> Any:
    def write(conn: Connection, action: str, target: str, detail: dict[str, Any]) -> None:
        audit.record(conn, staff, action, target, detail)
    return write


def list_page(request: Request, staff: Staff, ctx: Ctx, values: dict[str, str],
              errors: FieldErrors, status: int = 200) -> Response:
    state = request.query_params.get("state", "")
    kind = request.query_params.get("kind", "")
    with read_tx(ctx.engine) as conn:
        rows = ledger.list_tickets(
            conn, staff.tenant, state=state if state in ledger.STATES else None,
            kind=FORM_KINDS[kind][0] if kind in FORM_KINDS else None)
        owed = ledger.voucher_liabilities(conn, staff.tenant)
    return render(request, "tickets.html", staff, status_code=status, rows=rows,
                  owed=owed, values=values, errors=errors, state=state, kind=kind,
                  states=STATE_LABELS, kinds={k: v[1] for k, v in FORM_KINDS.items()},
                  kind_labels=KIND_LABELS, short_id=short_id, label_max=LABEL_MAX,
                  kind_options=[(k, _(v[1])) for k, v in FORM_KINDS.items()],
                  can_issue=staff.role in ("administrator", "reception"))


@router.get("/t/{tenant}/tickets", **route_meta("receipts.view"))
def tickets_list(request: Request, staff: Viewer, ctx: Ctx) -> Response:
    return list_page(request, staff, ctx, {"kind": "entries", "entries": "1",
                                           "valid_days": "365", "price": ""}, {})


@router.post("/t/{tenant}/tickets", **route_meta("members.edit"))
async def issue_ticket(request: Request, staff: Clerk, ctx: Ctx) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}
    req, errors = check_ticket_form(form)
    if req is None:
        return list_page(request, staff, ctx, form, errors, status=422)
    row, _code, mailed = desk(ctx).issue(staff.tenant, req, str(request.base_url),
                                         _audit(staff))
    return RedirectResponse(f"/t/{staff.tenant}/tickets/{row['id']}?issued=1"
                            f"{'&mailed=1' if mailed else ''}", 303)


def _ticket(ctx: WebContext, tenant: str, ticket_id: str) -> dict[str, Any]:
    with read_tx(ctx.engine) as conn:
        try:
            return ledger.get_ticket(conn, tenant, ticket_id)
        except NotFound:
            raise HTTPException(404, "no such ticket") from None


def ticket_view(request: Request, staff: Staff, ctx: WebContext, ticket_id: str,
                notice: str = "", sell: dict[str, str] | None = None,
                sell_errors: FieldErrors | None = None, status: int = 200) -> Response:
    with read_tx(ctx.engine) as conn:
        try:
            row = ledger.get_ticket(conn, staff.tenant, ticket_id)
        except NotFound:
            raise HTTPException(404, "no such ticket") from None
        bal = ledger.balance(conn, staff.tenant, row)
        uses = ledger.uses_of(conn, staff.tenant, ticket_id)
        row["receipt"] = sale_receipt(conn, staff.tenant, row)
        devices = tenant_devices(conn, staff.tenant)
    clerk = staff.role in ("administrator", "reception")
    return render(request, "ticket.html", staff, status_code=status, row=row, bal=bal,
                  uses=uses, notice=notice, short_id=short_id, kind_labels=KIND_LABELS,
                  states=STATE_LABELS, value_kind=int(TicketKind.VALUE_VOUCHER),
                  can_refund=clerk, can_sell=clerk and row["issuer"] == "tenant"
                  and not row["receipt"] and row["refunded_ms"] is None
                  and row["price_cents"] > 0,
                  sell=sell or {"vat": "22", "payment": "cash"}, sell_errors=sell_errors or {},
                  device_options=[(d, d) for d in devices],
                  payment_options=[("cash", _("cash")), ("card", _("card"))],
                  vat_options=[(v, v if v == "exempt" else f"{v} %") for v in VAT_RATES])


@router.get("/t/{tenant}/tickets/{ticket_id}", **route_meta("receipts.view"))
def ticket_page(request: Request, ticket_id: TicketId, staff: Viewer, ctx: Ctx,
                issued: str = "", mailed: str = "", sent: str = "") -> Response:
    notice = ""
    if issued:
        notice = _("Ticket issued.") + (" " + _("The e-mail to the buyer is queued.")
                                        if mailed else "")
    elif sent:
        notice = _("The sale was sent to the till; the receipt is shown here once printed.")
    return ticket_view(request, staff, ctx, ticket_id, notice)


@router.post("/t/{tenant}/tickets/{ticket_id}/sell", **route_meta("members.edit"))
async def sell_ticket(request: Request, ticket_id: TicketId, staff: Clerk,
                      ctx: Ctx) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}
    parsed, errors = validate_form(SellForm, form)
    if parsed is None:
        return ticket_view(request, staff, ctx, ticket_id, sell=form, sell_errors=errors,
                           status=422)
    try:
        request_id = sell_on_pos(ctx.engine, ctx.publisher, ctx.prefix, staff.tenant,
                                 ticket_id, parsed.device,
                                 parsed.model_dump(exclude={"device"}),
                                 ctx.keys.get(staff.tenant).signing_key, ctx.command_lifetimes)
    except NotFound:
        raise HTTPException(404, "no such ticket") from None
    except Conflict:
        return ticket_view(request, staff, ctx, ticket_id, sell=form, status=409, sell_errors={
            "__all__": _("This ticket is already sold on a receipt, or refunded.")})
    with write_tx(ctx.engine) as conn:
        audit.record(conn, staff, "ticket.sell", ticket_id,
                     {"device": parsed.device, "request_id": request_id})
    return RedirectResponse(f"/t/{staff.tenant}/tickets/{ticket_id}?sent=1", 303)


@router.get("/t/{tenant}/tickets/{ticket_id}/qr.png", **route_meta("receipts.view"))
def ticket_qr(ticket_id: TicketId, staff: Viewer, ctx: Ctx) -> Response:
    row = _ticket(ctx, staff.tenant, ticket_id)
    return Response(qr_png(desk(ctx).code(staff.tenant, row)), media_type="image/png",
                    headers={"Cache-Control": "no-store"})


@router.get("/t/{tenant}/tickets/{ticket_id}/ticket.pdf", **route_meta("receipts.view"))
def ticket_pdf_page(ticket_id: TicketId, staff: Viewer, ctx: Ctx) -> Response:
    row = _ticket(ctx, staff.tenant, ticket_id)
    return _pdf(ctx, staff.tenant, row)


def _pdf(ctx: WebContext, tenant: str, row: dict[str, Any]) -> Response:
    pdf = ticket_pdf(row, desk(ctx).code(tenant, row), tenant)
    return Response(pdf, media_type="application/pdf", headers={
        "Cache-Control": "no-store",
        "Content-Disposition": f'inline; filename="ticket-{short_id(row["id"])}.pdf"'})


@router.post("/t/{tenant}/tickets/{ticket_id}/refund", **route_meta("members.edit"))
async def refund_ticket(request: Request, ticket_id: TicketId, staff: Clerk,
                        ctx: Ctx) -> Response:
    form = await request.form()
    note = str(form.get("note", ""))[:200]
    desk(ctx).refund(staff.tenant, ticket_id, note, _audit(staff))
    return RedirectResponse(f"/t/{staff.tenant}/tickets/{ticket_id}", 303)


@router.get("/ticket-pdf/{tenant}/{ticket_id}/{token}", include_in_schema=False)
def buyer_pdf(tenant: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")],
              ticket_id: TicketId, token: Annotated[str, Path(max_length=40)],
              ctx: Ctx) -> Response:
    """The buyer's link from the e-mail: a wrong token, an unknown or a refunded ticket
    all answer 404 (nothing tells a guesser which)."""
    key = ctx.member_link_key
    if key is None or not hmac.compare_digest(token, link_token(key, tenant, ticket_id)):
        raise HTTPException(404, "no such ticket")
    row = _ticket(ctx, tenant, ticket_id)
    if row["refunded_ms"] is not None or row["valid_to"] <= time.time():
        raise HTTPException(404, "no such ticket")
    return _pdf(ctx, tenant, row)
