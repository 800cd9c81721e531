"""A member's credentials: issue a card, a PIN, a QR code or a voucher code; block,
unblock and revoke one. Every change goes through membership_ops, so it reaches the
devices signed."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import Connection, select

from cloud_bridge import membership_ops
from cloud_bridge.api_models import CredentialIn
from cloud_bridge.db_schema import credentials
from cloud_bridge.membership_ops import NotFound
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.form_errors import field_errors
from cloud_bridge.web.guards import route_meta
from cloud_bridge.web.member_forms import (
    Editor,
    MemberId,
    RowId,
    changed,
    form_dict,
)
from cloud_bridge.web.members_pages import member_page
from contracts.i18n import gettext as _

router = APIRouter(prefix="/t/{tenant}")


@router.post("/members/{member_id}/credentials", **route_meta("members.edit"))
async def issue(request: Request, staff: Editor, ctx: Ctx, member_id: MemberId
                ) -> Response:
    form = await form_dict(request)
    kind = form.get("kind", "")
    try:
        body = CredentialIn.model_validate({
            "member_id": member_id, "kind": kind,
            "uid": form.get("uid", "").strip() or None if kind == "card" else None,
            "code": form.get("code", "").strip() or None if kind != "card" else None})
    except ValidationError as exc:
        field = "uid" if kind == "card" else "code"
        message = (_("Enter the card number as 8 to 20 hexadecimal characters (0-9, A-F).")
                   if kind == "card" else field_errors(exc).get(field)
                   or _("This value is not accepted."))
        return member_page(request, staff, ctx, member_id, 422,
                           credential_values=form, credential_errors={field: message})
    hmac_key = ctx.keys.get(staff.tenant).hmac_key
    return changed(ctx, staff, member_id, "credential.issue", member_id,
                   {"kind": kind, "uid": body.uid, "code": body.code},
                   lambda c: membership_ops.issue_credential(c, staff.tenant, hmac_key, body),
                   "credential-issued")


def owned_credential(conn: Connection, tenant: str, member_id: str, cred_id: str) -> bool:
    row = conn.execute(select(credentials.c.member_id, credentials.c.blocked).where(
        credentials.c.tenant == tenant, credentials.c.id == cred_id)).first()
    if row is None or row.member_id != member_id:
        raise NotFound(f"credential {cred_id!r} is not this member's")
    return bool(row.blocked)


@router.post("/members/{member_id}/credentials/{cred_id}/block",
             **route_meta("members.edit"))
def block(staff: Editor, ctx: Ctx, member_id: MemberId,
          cred_id: RowId) -> Response:
    def work(conn: Connection) -> tuple[None, list[dict[str, Any]]]:
        blocked = owned_credential(conn, staff.tenant, member_id, cred_id)
        return None, membership_ops.block_credential(conn, staff.tenant, cred_id,
                                                     not blocked)

    return changed(ctx, staff, member_id, "credential.block", cred_id, {}, work,
                   "credential-updated")


@router.post("/members/{member_id}/credentials/{cred_id}/revoke",
             **route_meta("members.edit"))
def revoke(staff: Editor, ctx: Ctx, member_id: MemberId,
           cred_id: RowId) -> Response:
    def work(conn: Connection) -> tuple[None, list[dict[str, Any]]]:
        owned_credential(conn, staff.tenant, member_id, cred_id)
        return None, membership_ops.revoke_credential(conn, staff.tenant, cred_id)

    return changed(ctx, staff, member_id, "credential.revoke", cred_id, {}, work,
                   "credential-revoked")
