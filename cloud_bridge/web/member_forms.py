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
from cloud_bridge.web.guards import need
from cloud_bridge.web.membership_changes import FormError, apply_change

MemberId = Annotated[str, Path(pattern=ID_PATTERN)]
RowId = Annotated[str, Path(pattern=ID_PATTERN)]  # an entitlement's or a credential's
Viewer = Annotated[Staff, Depends(need("members.view"))]
Editor = Annotated[Staff, Depends(need("members.edit"))]


async def form_dict(request: Request) -> dict[str, str]:
    return {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}


def blank_to_none(form: dict[str, str], names: tuple[str, ...]) -> dict[str, Any]:
    return {n: (form[n].strip() or None) for n in names if n in form}


def member_url(staff: Staff, member_id: str, **msg: str) -> str:
    query = "&".join(f"{k}={quote(v[:300])}" for k, v in msg.items() if v)
    return f"/t/{staff.tenant}/members/{member_id}" + (f"?{query}" if query else "")


def changed(ctx: WebContext, staff: Staff, member_id: str, action: str, target: str,
            detail: dict[str, Any], work: Any, notice: str) -> Response:
    try:
        apply_change(ctx, staff, action, target, detail, work)
    except FormError as exc:
        return RedirectResponse(member_url(staff, member_id, error=str(exc)), 303)
    return RedirectResponse(member_url(staff, member_id, notice=notice), 303)
