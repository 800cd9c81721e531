"""Absence requests for managers (``/t/{tenant}/absence-requests``): the employees'
requests, newest first, with their documents; approving one enters the absence (the
same overlap rules as the absences page), refusing one needs a reason. Both decisions
are audited (absence_requests.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from cloud_bridge.attendance import absence_requests as requests_ops
from cloud_bridge.attendance import absences as absence_ops
from cloud_bridge.attendance import staff_forms as forms
from cloud_bridge.attendance.decision_notice import notify_decision
from cloud_bridge.attendance.labels import ABSENCE_NAMES
from cloud_bridge.attendance.staff_pages import Editor, render
from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.errors import BridgeError
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.form_errors import validate_form
from cloud_bridge.web.guards import route_meta
from cloud_bridge.web.member_forms import form_dict
from contracts.i18n import N_
from contracts.i18n import gettext as _

router = APIRouter()
RequestId = Annotated[int, Path(ge=1, le=2**31 - 1)]
NOTICES = {"approved": N_("The absence was approved and entered."),
           "refused": N_("The request was refused.")}


def _page(request: Request, staff: Staff, ctx: Ctx, status: int = 200, **context: Any
          ) -> Response:
    with read_tx(ctx.engine) as conn:
        rows = requests_ops.list_requests(conn, staff.tenant)
    base: dict[str, Any] = {"notice": "", "row_errors": {}}
    return render(request, "absence_requests.html", staff, status, requests=rows,
                  absence_names=ABSENCE_NAMES, forms=forms, **{**base, **context})


@router.get("/absence-requests", **route_meta("attendance.edit"))
def requests_page(request: Request, staff: Editor, ctx: Ctx, saved: str = "") -> Response:
    return _page(request, staff, ctx, notice=_(NOTICES[saved]) if saved in NOTICES else "")


# a POST with the form's CSRF token, not a link: a health document is not fetched by a
# prefetch or kept in a shared cache, and every download is a deliberate act
@router.post("/absence-requests/{request_id}/document", **route_meta("attendance.edit"))
def request_document(staff: Editor, ctx: Ctx, request_id: RequestId) -> Response:
    with read_tx(ctx.engine) as conn:
        doc = requests_ops.request_document(conn, staff.tenant, request_id)
    return Response(doc.data, media_type=doc.content_type, headers={
        "content-disposition": f"attachment; filename=request-{request_id}-document",
        "x-content-type-options": "nosniff", "cache-control": "no-store"})


@router.post("/absence-requests/{request_id}/approve", **route_meta("attendance.edit"))
async def approve(request: Request, staff: Editor, ctx: Ctx, request_id: RequestId
                  ) -> Response:
    try:
        with write_tx(ctx.engine) as conn:
            requests_ops.approve_request(conn, staff.tenant, request_id, staff.username)
            if ctx.notifier is not None:
                notify_decision(conn, ctx.notifier, staff.tenant, request_id)
    except absence_ops.AbsenceError as exc:
        return _page(request, staff, ctx, 422, row_errors={request_id: _(
            "The absence could not be entered: %(why)s") % {"why": str(exc)}})
    except BridgeError:
        return _page(request, staff, ctx, 422, row_errors={request_id: _(
            "That request was already decided.")})
    return RedirectResponse(f"/t/{staff.tenant}/absence-requests?saved=approved", 303)


@router.post("/absence-requests/{request_id}/refuse", **route_meta("attendance.edit"))
async def refuse(request: Request, staff: Editor, ctx: Ctx, request_id: RequestId
                 ) -> Response:
    body, errors = validate_form(forms.WithdrawForm, await form_dict(request))
    if body is None:
        return _page(request, staff, ctx, 422, row_errors={request_id: errors["reason"]})
    try:
        with write_tx(ctx.engine) as conn:
            requests_ops.refuse_request(conn, staff.tenant, request_id, staff.username,
                                        body.reason)
            if ctx.notifier is not None:
                notify_decision(conn, ctx.notifier, staff.tenant, request_id)
    except BridgeError:
        return _page(request, staff, ctx, 422, row_errors={request_id: _(
            "That request was already decided.")})
    return RedirectResponse(f"/t/{staff.tenant}/absence-requests?saved=refused", 303)
