"""What the member pages share: the member id in paths, the permission of each page,
reading a posted form, and the redirect back to the member's page with a notice or an
error after a change."""

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Path, Request
from fastapi.responses import RedirectResponse, Response

from cloud_bridge.api_models import ID_PATTERN
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.context import WebContext
from cloud_bridge.web.entitlement_forms import ENTRIES_MAX
from cloud_bridge.web.guards import need
from cloud_bridge.web.member_form import (
    EMAIL_MAX,
    FIRST_NAME_MAX,
    LAST_NAME_MAX,
    PHONE_MAX,
)
from cloud_bridge.web.membership_changes import FormError, apply_change
from contracts.i18n import N_
from contracts.i18n import gettext as _

MemberId = Annotated[str, Path(pattern=ID_PATTERN)]
RowId = Annotated[str, Path(pattern=ID_PATTERN)]  # an entitlement's or a credential's
Viewer = Annotated[Staff, Depends(need("members.view"))]
Editor = Annotated[Staff, Depends(need("members.edit"))]


async def form_dict(request: Request) -> dict[str, str]:
    return {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}


LIMITS = {"first_name": FIRST_NAME_MAX, "last_name": LAST_NAME_MAX, "email": EMAIL_MAX,
          "phone": PHONE_MAX, "entries": ENTRIES_MAX}
# what the member's page says after a change (the redirect carries the key only)
NOTICES = {
    "created": N_("Member created."),
    "saved": N_("Saved."),
    "entitlement-added": N_("Entitlement added."),
    "entitlement-saved": N_("Entitlement saved."),
    "entitlement-removed": N_("Entitlement removed."),
    "credential-issued": N_("Card or code issued."),
    "credential-updated": N_("Card or code updated."),
    "credential-revoked": N_("Card or code revoked."),
}
CREDENTIAL_KINDS = {"card": N_("Card"), "qr": N_("QR code"), "voucher": N_("Voucher code"),
                    "phone": N_("Phone")}
ERRORS = {
    "conflict": N_("This card or code is already issued. Use another one."),
    "invalid": N_("The change was refused: check the data and try again."),
}


def notice_text(key: str) -> str:
    return _(NOTICES[key]) if key in NOTICES else ""


def error_text(key: str) -> str:
    return _(ERRORS[key]) if key in ERRORS else ""


def member_url(staff: Staff, member_id: str, **msg: str) -> str:
    query = "&".join(f"{k}={quote(v[:300])}" for k, v in msg.items() if v)
    return f"/t/{staff.tenant}/members/{member_id}" + (f"?{query}" if query else "")


def changed(ctx: WebContext, staff: Staff, member_id: str, action: str, target: str,
            detail: dict[str, Any], work: Any, notice: str) -> Response:
    try:
        apply_change(ctx, staff, action, target, detail, work)
    except FormError as exc:
        return RedirectResponse(member_url(
            staff, member_id, error="conflict" if exc.conflict else "invalid"), 303)
    return RedirectResponse(member_url(staff, member_id, notice=notice), 303)
