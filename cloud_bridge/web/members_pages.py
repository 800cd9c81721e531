"""Members: search, create and edit; entitlements of every kind (from a plan or by
hand), cards and QR credentials; a member's recent entries and why taps were denied.
Every change goes through membership_ops, so it reaches the devices signed."""

# no "from __future__ import annotations": FastAPI resolves the route signatures, whose
# dependencies are local to the router factory

import uuid
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import Connection, literal_column, select

from cloud_bridge import membership_ops
from cloud_bridge.api_models import (
    ID_PATTERN,
    CredentialIn,
    EntitlementIn,
    EntitlementPatch,
    MemberIn,
    MemberPatch,
)
from cloud_bridge.db_schema import (
    MEMBER_OF_EVENT,
    credentials,
    entitlements,
    events,
    read_tx,
)
from cloud_bridge.member_qr_links import phone_links
from cloud_bridge.membership_ops import NotFound
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.context import WebContext
from cloud_bridge.web.entitlement_forms import (
    FieldError,
    day_start_s,
    entitlement_fields,
    format_windows,
    parse_day,
)
from cloud_bridge.web.guards import need, route_meta
from cloud_bridge.web.member_search import search_members
from cloud_bridge.web.membership_changes import FormError, apply_change, first_error
from cloud_bridge.web.plans import get_plan, tenant_plans
from cloud_bridge.web.reason_text import explain
from cloud_bridge.web.rendering import local_day_s, render

MemberId = Annotated[str, Path(pattern=ID_PATTERN)]
ACCESS_TYPES = ("access.decision", "access.remote_open")


def member_events(conn: Connection, tenant: str, member_id: str, limit: int = 30
                  ) -> list[dict[str, Any]]:
    member_expr = literal_column(MEMBER_OF_EVENT[conn.dialect.name])  # the indexed text
    rows = conn.execute(select(events.c.device, events.c.seq, events.c.ts, events.c.data)
                        .where(events.c.tenant == tenant, member_expr == member_id,
                               events.c.type == "access.decision")
                        .order_by(events.c.ts.desc()).limit(limit)).mappings()
    return [{**dict(r), "why": explain(r["data"].get("reason"))} for r in rows]


async def form_dict(request: Request) -> dict[str, str]:
    return {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}


def blank_to_none(form: dict[str, str], names: tuple[str, ...]) -> dict[str, Any]:
    return {n: (form[n].strip() or None) for n in names if n in form}


def members_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(prefix="/t/{tenant}")
    view = need(ctx.auth, "members.view")
    edit = need(ctx.auth, "members.edit")
    Viewer = Annotated[Staff, Depends(view)]
    Editor = Annotated[Staff, Depends(edit)]

    def member_url(staff: Staff, member_id: str, **msg: str) -> str:
        query = "&".join(f"{k}={quote(v[:300])}" for k, v in msg.items() if v)
        return f"/t/{staff.tenant}/members/{member_id}" + (f"?{query}" if query else "")

    def changed(staff: Staff, member_id: str, action: str, target: str,
                detail: dict[str, Any], work: Any, notice: str) -> Response:
        try:
            apply_change(ctx, staff, action, target, detail, work)
        except FormError as exc:
            return RedirectResponse(member_url(staff, member_id, error=str(exc)), 303)
        return RedirectResponse(member_url(staff, member_id, notice=notice), 303)

    @router.get("/members", **route_meta("members.view"))
    def search(request: Request, staff: Viewer,
               q: Annotated[str, Query(max_length=80)] = "",
               page: Annotated[int, Query(ge=0, le=10_000)] = 0) -> Response:
        with read_tx(ctx.engine) as conn:
            result = search_members(conn, staff.tenant, q, page)
        return render(request, "members.html", staff, q=q, result=result)

    @router.get("/members/new", **route_meta("members.edit"))
    def new_member(request: Request, staff: Editor, error: str = "") -> Response:
        return render(request, "member_new.html", staff, error=error[:300])

    @router.post("/members", **route_meta("members.edit"))
    async def create(request: Request, staff: Editor) -> Response:
        form = await form_dict(request)
        try:
            body = MemberIn.model_validate({
                **blank_to_none(form, ("first_name", "last_name", "email", "phone",
                                       "waiver_signed_on")),
                "last_name": form.get("last_name", "").strip(),
                "blocked": form.get("blocked") == "on",
                "id": f"m-{uuid.uuid4().hex[:20]}"})  # known before the change: audited
        except ValidationError as exc:
            return RedirectResponse(f"/t/{staff.tenant}/members/new?error="
                                    f"{quote(first_error(exc))}", 303)
        try:
            member_id = apply_change(ctx, staff, "member.create", str(body.id), {},
                                     lambda c: membership_ops.create_member(c, staff.tenant,
                                                                            body))
        except FormError as exc:
            return RedirectResponse(f"/t/{staff.tenant}/members/new?error={quote(str(exc))}",
                                    303)
        return RedirectResponse(member_url(staff, member_id, notice="Member created"), 303)

    @router.get("/members/{member_id}", **route_meta("members.view"))
    def detail(request: Request, staff: Viewer, member_id: MemberId, error: str = "",
               notice: str = "") -> Response:
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
            links = (phone_links(conn, str(request.base_url), ctx.member_link_key,
                                 staff.tenant, member_id) if ctx.member_link_key else {})
        for e in ents:
            e["windows_text"] = format_windows(e["windows"])
            e["used"] = sum((e["used_by_device"] or {}).values())
            # the form shows "until" inclusive; valid_to/frozen_to are exclusive
            e["valid_until"] = local_day_s(e["valid_to"] - 1) if e["valid_to"] else ""
            e["frozen_until"] = local_day_s(e["frozen_to"] - 1) if e["frozen_to"] else ""
        return render(request, "member.html", staff, member=member, credentials=creds,
                      entitlements=ents, recent=recent, plans=plan_rows, phone_links=links,
                      today=date.today().isoformat(), error=error[:300], notice=notice[:200])

    @router.post("/members/{member_id}", **route_meta("members.edit"))
    async def update(request: Request, staff: Editor, member_id: MemberId) -> Response:
        form = await form_dict(request)
        try:
            patch = MemberPatch.model_validate({
                **blank_to_none(form, ("email", "phone", "waiver_signed_on")),
                "first_name": form.get("first_name", "").strip(),
                "last_name": form.get("last_name", "").strip(),
                "blocked": form.get("blocked") == "on"})
        except ValidationError as exc:
            return RedirectResponse(member_url(staff, member_id, error=first_error(exc)), 303)
        return changed(staff, member_id, "member.update", member_id,
                       {"fields": sorted(patch.model_fields_set)},
                       lambda c: (None, membership_ops.update_member(c, staff.tenant,
                                                                     member_id, patch)),
                       "Saved")

    # -- entitlements --------------------------------------------------------------

    def from_plan(conn: Connection, tenant: str, form: dict[str, str]) -> dict[str, Any]:
        plan = get_plan(conn, tenant, form.get("plan_id", "")[:64])
        if plan is None or not plan["active"]:
            raise FieldError("choose an active plan")
        start = parse_day(form.get("start", ""), "start") or date.today()
        fields: dict[str, Any] = {"kind": plan["kind"], "entries_total": plan["entries_total"],
                                  "zones": plan["zones"], "windows": plan["windows"] or []}
        if plan["kind"] == "day_ticket":
            fields["valid_on"] = start
        else:
            fields["valid_from"] = day_start_s(start)
            if plan["duration_days"]:
                fields["valid_to"] = day_start_s(start + timedelta(days=plan["duration_days"]))
        return fields

    @router.post("/members/{member_id}/entitlements", **route_meta("members.edit"))
    async def add_entitlement(request: Request, staff: Editor, member_id: MemberId
                              ) -> Response:
        form = await form_dict(request)
        code = form.get("voucher_code", "").strip()
        hmac_key = ctx.keys.get(staff.tenant).hmac_key

        def work(conn: Connection) -> tuple[str, list[dict[str, Any]]]:
            fields = (from_plan(conn, staff.tenant, form) if form.get("plan_id")
                      else entitlement_fields(form))
            records: list[dict[str, Any]] = []
            if code and fields["kind"] == "gift_voucher":
                # the voucher's own code: only this credential can use the entitlement
                cred_id, records = membership_ops.issue_credential(
                    conn, staff.tenant, hmac_key,
                    CredentialIn(member_id=member_id, kind="voucher", code=code))
                fields["credential_id"] = cred_id
            try:
                body = EntitlementIn.model_validate({**fields, "member_id": member_id})
            except ValidationError as exc:
                raise FieldError(first_error(exc)) from None
            ent_id, more = membership_ops.create_entitlement(conn, staff.tenant, body)
            return ent_id, records + more

        try:
            apply_change(ctx, staff, "entitlement.create", member_id,
                         {"plan": form.get("plan_id"), "kind": form.get("kind"),
                          "code": code}, work)
        except (FormError, FieldError) as exc:
            return RedirectResponse(member_url(staff, member_id, error=str(exc)), 303)
        return RedirectResponse(member_url(staff, member_id, notice="Entitlement added"), 303)

    def owned_entitlement(conn: Connection, tenant: str, member_id: str, ent_id: str) -> None:
        owner = conn.execute(select(entitlements.c.member_id).where(
            entitlements.c.tenant == tenant, entitlements.c.id == ent_id)).scalar()
        if owner != member_id:
            raise NotFound(f"entitlement {ent_id!r} is not this member's")

    @router.post("/members/{member_id}/entitlements/{ent_id}", **route_meta("members.edit"))
    async def edit_entitlement(request: Request, staff: Editor, member_id: MemberId,
                               ent_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> Response:
        form = await form_dict(request)
        try:
            fields = entitlement_fields(form)
            patch = EntitlementPatch.model_validate(fields)
        except FieldError as exc:
            return RedirectResponse(member_url(staff, member_id, error=str(exc)), 303)
        except ValidationError as exc:
            return RedirectResponse(member_url(staff, member_id, error=first_error(exc)), 303)

        def work(conn: Connection) -> tuple[None, list[dict[str, Any]]]:
            owned_entitlement(conn, staff.tenant, member_id, ent_id)
            return None, membership_ops.update_entitlement(conn, staff.tenant, ent_id, patch)

        return changed(staff, member_id, "entitlement.update", ent_id,
                       {"frozen_from": fields["frozen_from"], "frozen_to": fields["frozen_to"]},
                       work, "Entitlement saved")

    @router.post("/members/{member_id}/entitlements/{ent_id}/delete",
                 **route_meta("members.edit"))
    def delete_entitlement(staff: Editor, member_id: MemberId,
                           ent_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> Response:
        def work(conn: Connection) -> tuple[None, list[dict[str, Any]]]:
            owned_entitlement(conn, staff.tenant, member_id, ent_id)
            return None, membership_ops.delete_entitlement(conn, staff.tenant, ent_id)

        return changed(staff, member_id, "entitlement.delete", ent_id, {}, work,
                       "Entitlement removed")

    # -- credentials ---------------------------------------------------------------

    @router.post("/members/{member_id}/credentials", **route_meta("members.edit"))
    async def issue(request: Request, staff: Editor, member_id: MemberId) -> Response:
        form = await form_dict(request)
        kind = form.get("kind", "")
        try:
            body = CredentialIn.model_validate({
                "member_id": member_id, "kind": kind,
                "uid": form.get("uid", "").strip() or None if kind == "card" else None,
                "code": form.get("code", "").strip() or None if kind != "card" else None})
        except ValidationError as exc:
            return RedirectResponse(member_url(staff, member_id, error=first_error(exc)), 303)
        hmac_key = ctx.keys.get(staff.tenant).hmac_key
        return changed(staff, member_id, "credential.issue", member_id,
                       {"kind": kind, "uid": body.uid, "code": body.code},
                       lambda c: membership_ops.issue_credential(c, staff.tenant, hmac_key, body),
                       f"{kind} issued")

    def owned_credential(conn: Connection, tenant: str, member_id: str, cred_id: str) -> bool:
        row = conn.execute(select(credentials.c.member_id, credentials.c.blocked).where(
            credentials.c.tenant == tenant, credentials.c.id == cred_id)).first()
        if row is None or row.member_id != member_id:
            raise NotFound(f"credential {cred_id!r} is not this member's")
        return bool(row.blocked)

    @router.post("/members/{member_id}/credentials/{cred_id}/block",
                 **route_meta("members.edit"))
    def block(staff: Editor, member_id: MemberId,
              cred_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> Response:
        def work(conn: Connection) -> tuple[None, list[dict[str, Any]]]:
            blocked = owned_credential(conn, staff.tenant, member_id, cred_id)
            return None, membership_ops.block_credential(conn, staff.tenant, cred_id,
                                                         not blocked)

        return changed(staff, member_id, "credential.block", cred_id, {}, work,
                       "Credential updated")

    @router.post("/members/{member_id}/credentials/{cred_id}/revoke",
                 **route_meta("members.edit"))
    def revoke(staff: Editor, member_id: MemberId,
               cred_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> Response:
        def work(conn: Connection) -> tuple[None, list[dict[str, Any]]]:
            owned_credential(conn, staff.tenant, member_id, cred_id)
            return None, membership_ops.revoke_credential(conn, staff.tenant, cred_id)

        return changed(staff, member_id, "credential.revoke", cred_id, {}, work,
                       "Credential revoked")

    return router
