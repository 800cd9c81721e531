"""Waiver pages: the versions and publishing one (administrators), and signing the
current version at the reception's kiosk (docs/waivers.md). The rules live in
cloud_bridge/waivers.py; these routes only read forms and render."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from cloud_bridge import waiver_notices, waivers
from cloud_bridge.db_schema import read_tx
from cloud_bridge.errors import Invalid
from cloud_bridge.member_notices import OptoutLinks
from cloud_bridge.membership_ops import NotFound, get_member
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.form_errors import FieldErrors
from cloud_bridge.web.guards import need, route_meta
from cloud_bridge.web.membership_changes import FormError, apply_change
from cloud_bridge.web.rendering import render
from contracts.i18n import gettext as _

router = APIRouter(prefix="/t/{tenant}")
Viewer = Annotated[Staff, Depends(need("members.view"))]
Editor = Annotated[Staff, Depends(need("plans.edit"))]
Signer = Annotated[Staff, Depends(need("members.edit"))]


def _field_of(message: str) -> str:
    return message.split(":", 1)[0] if ":" in message else "__form__"


def versions_page(request: Request, staff: Staff, ctx: Ctx, values: dict[str, str],
                  errors: FieldErrors, status: int = 200, notice: str = "") -> Response:
    with read_tx(ctx.engine) as conn:
        rows = waivers.versions(conn, staff.tenant)
    return render(request, "waivers.html", staff, status_code=status, versions=rows,
                  values=values, errors=errors, notice=notice,
                  limits={"title": waivers.TITLE_MAX, "text": waivers.TEXT_MAX})


@router.get("/waivers", **route_meta("members.view"))
def list_waivers(request: Request, staff: Viewer, ctx: Ctx) -> Response:
    return versions_page(request, staff, ctx, {}, {})


@router.post("/waivers", **route_meta("plans.edit"))
async def publish_waiver(request: Request, staff: Editor, ctx: Ctx) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}
    try:
        version, failed = waivers.publish(ctx.engine, staff.tenant, form.get("title", ""),
                                          form.get("body", ""), by=staff.username)
    except Invalid as exc:
        field = {"title": "title", "text": "body"}.get(_field_of(str(exc)), "__form__")
        text = {"title": _("Give a title of at most %(n)s characters.")
                % {"n": waivers.TITLE_MAX},
                "body": _("Give the text, at most %(n)s characters.")
                % {"n": waivers.TEXT_MAX}}.get(field, str(exc))
        return versions_page(request, staff, ctx, form, {field: text}, status=422)
    notice = _("Waiver version %(v)s published; members sign it at their next visit.") % {
        "v": version.version}
    if ctx.notifier is not None:  # queued only: the outbox's thread sends them
        links = (OptoutLinks(str(request.base_url), ctx.member_link_key)
                 if ctx.member_link_key else None)  # each member's opt-out page
        mailed = waiver_notices.waiver_to_sign(ctx.engine, ctx.notifier, staff.tenant,
                                               version, links)
        notice += " " + _("Messages queued for members (e-mail and SMS): %(n)s.") % {
            "n": mailed}
    if failed:
        notice += " " + _("These devices kept the older version: %(names)s.") % {
            "names": ", ".join(failed)}
    return versions_page(request, staff, ctx, {}, {}, notice=notice)


def sign_page(request: Request, staff: Staff, ctx: Ctx, member_id: str,
              values: dict[str, str], errors: FieldErrors, status: int = 200,
              notice: str = "") -> Response:
    with read_tx(ctx.engine) as conn:
        try:
            member = dict(get_member(conn, staff.tenant, member_id[:64]))
        except NotFound:
            raise HTTPException(404, "no such member") from None
        state = waivers.status(conn, staff.tenant, member["id"])
        drawing = (waivers.drawing_of(conn, staff.tenant, member["id"], state.signed_version)
                   if state.signed_version else None)
    return render(request, "waiver_sign.html", staff, status_code=status, member=member,
                  state=state, drawing=drawing, values=values, errors=errors, notice=notice,
                  name_max=waivers.NAME_MAX)


@router.get("/members/{member_id}/waiver", **route_meta("members.view"))
def show_sign(request: Request, member_id: str, staff: Viewer, ctx: Ctx) -> Response:
    return sign_page(request, staff, ctx, member_id, {}, {})


@router.post("/members/{member_id}/waiver", **route_meta("members.edit"))
async def sign_waiver(request: Request, member_id: str, staff: Signer, ctx: Ctx) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}
    version = int(form["version"]) if form.get("version", "").isdigit() else -1
    try:
        apply_change(ctx, staff, "waiver.sign", member_id[:64], {"version": version},
                     lambda conn: (None, waivers.sign(
                         conn, staff.tenant, member_id[:64], version,
                         form.get("signed_name", ""), consent=form.get("consent") in ("1", "on"),
                         method="drawn" if form.get("drawing") else "typed",
                         channel="kiosk", drawing_svg=form.get("drawing") or None)))
    except FormError as exc:
        field = {"name": "signed_name", "consent": "consent", "drawing": "drawing"}.get(
            _field_of(str(exc)), "__form__")
        text = {"signed_name": _("Type your full name or draw your signature."),
                "consent": _("Tick the box to agree to the waiver."),
                "drawing": _("The drawing is not a signature: clear it and draw again, "
                             "or type your full name.")}.get(field, str(exc))
        return sign_page(request, staff, ctx, member_id, form, {field: text}, status=422)
    return RedirectResponse(f"/t/{staff.tenant}/members/{member_id[:64]}/waiver?signed=1", 303)

