"""A member's entitlements: add one (from a plan or by hand, a gift voucher with its own
code), change its validity or freeze, remove it. Every change goes through
membership_ops, so it reaches the devices signed."""

from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import Connection, select

from cloud_bridge import membership_ops
from cloud_bridge.api_models import CredentialIn, EntitlementIn, EntitlementPatch
from cloud_bridge.db_schema import entitlements
from cloud_bridge.member_notices import OptoutLinks, queue_voucher_bought_notice
from cloud_bridge.membership_ops import NotFound
from cloud_bridge.web.context import LOCAL_TZ
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.entitlement_forms import (
    FieldError,
    day_start_s,
    entitlement_fields,
    parse_day,
)
from cloud_bridge.web.guards import route_meta
from cloud_bridge.web.member_forms import (
    Editor,
    MemberId,
    RowId,
    changed,
    error_text,
    form_dict,
    member_url,
)
from cloud_bridge.web.members_pages import member_page
from cloud_bridge.web.membership_changes import FormError, apply_change
from cloud_bridge.web.plans import get_plan
from contracts.i18n import gettext as _

router = APIRouter(prefix="/t/{tenant}")


def from_plan(conn: Connection, tenant: str, form: dict[str, str]) -> dict[str, Any]:
    plan = get_plan(conn, tenant, form.get("plan_id", "")[:64])
    if plan is None or not plan["active"]:
        raise FieldError(_("Choose one of the offered options."), "plan_id")
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


def _last_day(valid_to_s: int | None) -> date | None:
    """The last local day of a validity that ends (exclusive) at ``valid_to_s``."""
    if valid_to_s is None:
        return None
    return (datetime.fromtimestamp(valid_to_s, LOCAL_TZ) - timedelta(seconds=1)).date()


@router.post("/members/{member_id}/entitlements", **route_meta("members.edit"))
async def add_entitlement(request: Request, staff: Editor, ctx: Ctx, member_id: MemberId
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
        except ValidationError:
            raise FieldError(_("These dates or values do not fit together; check them."),
                             "__all__") from None
        ent_id, more = membership_ops.create_entitlement(conn, staff.tenant, body)
        if code and body.kind == "gift_voucher" and ctx.notifier is not None:
            # queued in this transaction; the member's opt-out applies (member_notices)
            links = (OptoutLinks(str(request.base_url), ctx.member_link_key)
                     if ctx.member_link_key else None)
            queue_voucher_bought_notice(
                conn, ctx.notifier, staff.tenant, ent_id, code=code, member_id=member_id,
                valid_until=_last_day(body.valid_to), links=links)
        return ent_id, records + more

    which = "sale" if form.get("plan_id") else "custom"
    try:
        apply_change(ctx, staff, "entitlement.create", member_id,
                     {"plan": form.get("plan_id"), "kind": form.get("kind"),
                      "code": code}, work)
    except FieldError as exc:
        return member_page(request, staff, ctx, member_id, 422,
                           **{f"{which}_values": form, f"{which}_errors": {exc.field: str(exc)}})
    except FormError as exc:
        message = error_text("conflict" if exc.conflict else "invalid")
        return member_page(request, staff, ctx, member_id, 422,
                           **{f"{which}_values": form, f"{which}_errors": {"__all__": message}})
    return RedirectResponse(member_url(staff, member_id, notice="entitlement-added"), 303)


def owned_entitlement(conn: Connection, tenant: str, member_id: str, ent_id: str) -> None:
    owner = conn.execute(select(entitlements.c.member_id).where(
        entitlements.c.tenant == tenant, entitlements.c.id == ent_id)).scalar()
    if owner != member_id:
        raise NotFound(f"entitlement {ent_id!r} is not this member's")


@router.post("/members/{member_id}/entitlements/{ent_id}", **route_meta("members.edit"))
async def edit_entitlement(request: Request, staff: Editor, ctx: Ctx,
                           member_id: MemberId, ent_id: RowId) -> Response:
    form = await form_dict(request)
    try:
        fields = entitlement_fields(form)
        patch = EntitlementPatch.model_validate(fields)
    except FieldError as exc:
        return member_page(request, staff, ctx, member_id, 422, error=str(exc))
    except ValidationError:
        return member_page(request, staff, ctx, member_id, 422, error=_(
            "These dates or values do not fit together; check them."))

    def work(conn: Connection) -> tuple[None, list[dict[str, Any]]]:
        owned_entitlement(conn, staff.tenant, member_id, ent_id)
        return None, membership_ops.update_entitlement(conn, staff.tenant, ent_id, patch)

    return changed(ctx, staff, member_id, "entitlement.update", ent_id,
                   {"frozen_from": fields["frozen_from"], "frozen_to": fields["frozen_to"]},
                   work, "entitlement-saved")


@router.post("/members/{member_id}/entitlements/{ent_id}/delete",
             **route_meta("members.edit"))
def delete_entitlement(staff: Editor, ctx: Ctx, member_id: MemberId,
                       ent_id: RowId) -> Response:
    def work(conn: Connection) -> tuple[None, list[dict[str, Any]]]:
        owned_entitlement(conn, staff.tenant, member_id, ent_id)
        return None, membership_ops.delete_entitlement(conn, staff.tenant, ent_id)

    return changed(ctx, staff, member_id, "entitlement.delete", ent_id, {}, work,
                   "entitlement-removed")
