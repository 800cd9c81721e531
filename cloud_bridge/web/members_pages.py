"""Members: search, create and edit; a member's page with their entitlements,
credentials, recent entries and why taps were denied (the entitlement and credential
forms post to member_entitlements.py and member_credentials.py). Every change goes
through membership_ops, so it reaches the devices signed."""

from datetime import date
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection, literal_column, select

from cloud_bridge import membership_ops
from cloud_bridge.api_models import MemberIn, MemberPatch
from cloud_bridge.db_schema import (
    MEMBER_OF_EVENT,
    credentials,
    entitlements,
    events,
    read_tx,
)
from cloud_bridge.member_qr_links import phone_links
from cloud_bridge.membership_ops import NotFound, Record
from cloud_bridge.notice_optouts import opted_out
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.entitlement_forms import format_windows
from cloud_bridge.web.form_errors import validate_form
from cloud_bridge.web.guards import route_meta
from cloud_bridge.web.member_form import (
    MemberForm,
    form_values,
    next_member_number,
    typed_day,
)
from cloud_bridge.web.member_forms import (
    CREDENTIAL_KINDS,
    LIMITS,
    Editor,
    MemberId,
    Viewer,
    changed,
    error_text,
    form_dict,
    member_url,
    notice_text,
)
from cloud_bridge.web.member_search import search_members
from cloud_bridge.web.membership_changes import FormError, apply_change
from cloud_bridge.web.plan_form import KIND_LABELS
from cloud_bridge.web.plans import tenant_plans
from cloud_bridge.web.rendering import render
from contracts.i18n import gettext as _
from contracts.reasons import explain

ACCESS_TYPES = ("access.decision", "access.remote_open")


def member_events(conn: Connection, tenant: str, member_id: str, limit: int = 30
                  ) -> list[dict[str, Any]]:
    member_expr: Any = literal_column(MEMBER_OF_EVENT[conn.dialect.name])  # the indexed text
    rows = conn.execute(select(events.c.device, events.c.seq, events.c.ts, events.c.data)
                        .where(events.c.tenant == tenant, member_expr == member_id,
                               events.c.type == "access.decision")
                        .order_by(events.c.ts.desc()).limit(limit)).mappings()
    return [{**dict(r), "why": explain(r["data"].get("reason"))} for r in rows]


router = APIRouter(prefix="/t/{tenant}")


def create_member_in(conn: Connection, tenant: str, body: MemberIn
                     ) -> tuple[str, list[Record]]:
    return membership_ops.create_member(conn, tenant, body)


@router.get("/members", **route_meta("members.view"))
def search(request: Request, staff: Viewer, ctx: Ctx,
           q: Annotated[str, Query(max_length=80)] = "",
           page: Annotated[int, Query(ge=0, le=10_000)] = 0) -> Response:
    with read_tx(ctx.engine) as conn:
        result = search_members(conn, staff.tenant, q, page)
    return render(request, "members.html", staff, q=q, result=result)


@router.get("/members/new", **route_meta("members.edit"))
def new_member(request: Request, staff: Editor) -> Response:
    return render(request, "member_new.html", staff, values={}, errors={}, limits=LIMITS)


@router.post("/members", **route_meta("members.edit"))
async def create(request: Request, staff: Editor, ctx: Ctx) -> Response:
    form = await form_dict(request)
    checked, errors = validate_form(MemberForm, form)
    if checked is None:
        return render(request, "member_new.html", staff, status_code=422, values=form,
                      errors=errors, limits=LIMITS)
    for _attempt in range(5):  # another clerk may take the same number at once
        with read_tx(ctx.engine) as conn:
            number = next_member_number(conn, staff.tenant)
        body = MemberIn.model_validate({**checked.fields(), "id": number})
        try:
            member_id = apply_change(ctx, staff, "member.create", number, {},
                                     partial(create_member_in, tenant=staff.tenant, body=body))
        except FormError:
            continue
        return RedirectResponse(member_url(staff, member_id, notice="created"), 303)
    raise HTTPException(409, "no free member number")


def member_page(request: Request, staff: Staff, ctx: Ctx, member_id: str,
                status: int = 200, **forms: Any) -> Response:
    """The member's page; ``forms``: values and errors of a form that was refused."""
    with read_tx(ctx.engine) as conn:
        try:
            member = dict(membership_ops.get_member(conn, staff.tenant, member_id))
        except NotFound:
            raise HTTPException(404, "no such member") from None
        creds = [dict(r) for r in conn.execute(select(credentials).where(
            credentials.c.tenant == staff.tenant, credentials.c.member_id == member_id)
            .order_by(credentials.c.created_at)).mappings()]
        ents = [dict(r) for r in conn.execute(select(entitlements).where(
            entitlements.c.tenant == staff.tenant, entitlements.c.member_id == member_id)
            .order_by(entitlements.c.created_at)).mappings()]
        recent = member_events(conn, staff.tenant, member_id)
        plan_rows = tenant_plans(conn, staff.tenant, active_only=True)
        notices_off = opted_out(conn, staff.tenant, member_id)  # notice_optouts.py
        links = (phone_links(conn, str(request.base_url), ctx.member_link_key,
                             staff.tenant, member_id) if ctx.member_link_key else {})
    for e in ents:
        e["windows_text"] = format_windows(e["windows"])
        e["used"] = sum((e["used_by_device"] or {}).values())
        # the form shows "until" inclusive; valid_to/frozen_to are exclusive
        e["valid_until"] = typed_day(e["valid_to"] - 1) if e["valid_to"] else ""
        e["frozen_until"] = typed_day(e["frozen_to"] - 1) if e["frozen_to"] else ""
    context: dict[str, Any] = {
        "values": form_values(member), "errors": {}, "sale_values": {
            "start": typed_day(date.today())}, "sale_errors": {},
        "custom_values": {}, "custom_errors": {}, "credential_values": {},
        "credential_errors": {}, **forms}
    return render(request, "member.html", staff, status_code=status, member=member,
                  credentials=creds, entitlements=ents, recent=recent, plans=plan_rows,
                  phone_links=links, notices_opted_out=notices_off, limits=LIMITS,
                  kind_labels=KIND_LABELS,
                  credential_kinds=CREDENTIAL_KINDS,
                  kinds=[(k, _(v)) for k, v in KIND_LABELS.items()], **context)


@router.get("/members/{member_id}", **route_meta("members.view"))
def detail(request: Request, staff: Viewer, ctx: Ctx, member_id: MemberId,
           notice: Annotated[str, Query(max_length=40)] = "",
           error: Annotated[str, Query(max_length=40)] = "") -> Response:
    return member_page(request, staff, ctx, member_id, notice=notice_text(notice),
                       error=error_text(error))


@router.post("/members/{member_id}", **route_meta("members.edit"))
async def update(request: Request, staff: Editor, ctx: Ctx, member_id: MemberId
                 ) -> Response:
    form = await form_dict(request)
    checked, errors = validate_form(MemberForm, form)
    if checked is None:
        return member_page(request, staff, ctx, member_id, 422, values=form, errors=errors)
    patch = MemberPatch.model_validate(checked.fields())
    return changed(ctx, staff, member_id, "member.update", member_id,
                   {"fields": sorted(patch.model_fields_set)},
                   lambda c: (None, membership_ops.update_member(c, staff.tenant,
                                                                 member_id, patch)),
                   "saved")
