"""The phone punch for staff (``/t/{tenant}/phones``): enrol an employee's phone (the
personal link is shown once), revoke an enrolment, and type or draw a site's geofence (a
circle or a polygon; the drawing pad, static/fence_pad.js, fills in the typed fields) with
its location policy and how long punch locations are kept. Every
change is in the attendance audit trail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection, select

from cloud_bridge.attendance import phone_forms as forms
from cloud_bridge.attendance.geofence import Policy
from cloud_bridge.attendance.phone_enrolment import create_enrolment, revoke_enrolment
from cloud_bridge.attendance.phone_punch import set_geofence
from cloud_bridge.attendance.schema import geofences, phone_enrolments
from cloud_bridge.attendance.staff_forms import blanks_to_none
from cloud_bridge.attendance.staff_pages import (
    Editor,
    employee_choices,
    render,
    tenant_employees,
    unknown_employee,
)
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
EnrolmentId = Annotated[int, Path(ge=1, le=2**31 - 1)]
POLICY_NAMES = {Policy.RECORD: N_("record the location only"),
                Policy.FLAG: N_("mark punches outside the site"),
                Policy.REFUSE: N_("refuse punches outside the site")}
NOTICES = {"site": N_("The site was saved."), "revoked": N_("The phone was signed out.")}


def current_sites(conn: Connection, tenant: str) -> list[dict[str, Any]]:
    """The newest fence of each site of the tenant."""
    rows = conn.execute(select(geofences).where(geofences.c.tenant == tenant)
                        .order_by(geofences.c.id)).mappings().all()
    return sorted({r["site"]: dict(r) for r in rows}.values(), key=lambda r: r["site"])


def _enrolments(conn: Connection, tenant: str) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(
        select(phone_enrolments).where(phone_enrolments.c.tenant == tenant)
        .order_by(phone_enrolments.c.id.desc())).mappings()]


def _page(request: Request, staff: Staff, ctx: Ctx, status: int = 200, **context: Any
          ) -> Response:
    with read_tx(ctx.engine) as conn:
        people = tenant_employees(conn, staff.tenant)
        sites = current_sites(conn, staff.tenant)
        enrolments = _enrolments(conn, staff.tenant)
    policies = [(p.value, _(POLICY_NAMES[p])) for p in Policy]
    # the saved fences, drawn in grey on the drawing pad (static/fence_pad.js)
    pad_sites = [{"lat": s["lat"], "lon": s["lon"], "radius_m": s["radius_m"],
                  "polygon": s["polygon"] or []} for s in sites]
    base: dict[str, Any] = {"enrol_values": {}, "enrol_errors": {}, "site_values": {
        "shape": "circle", "policy": "flag", "retention_days": "30"}, "site_errors": {},
        "link": None, "notice": ""}
    return render(request, "phones.html", staff, status, forms=forms,
                  employees=employee_choices(people), sites=sites, enrolments=enrolments,
                  policies=policies, policy_names=POLICY_NAMES, pad_sites=pad_sites,
                  site_choices=[("", "—")] + [(s["site"], s["site"]) for s in sites],
                  policy_choices=[("", _("the site's policy")), *policies],
                  **{**base, **context})


@router.get("/phones", **route_meta("attendance.edit"))
def phones_page(request: Request, staff: Editor, ctx: Ctx, saved: str = "") -> Response:
    return _page(request, staff, ctx, notice=_(NOTICES[saved]) if saved in NOTICES else "")


@router.post("/phones/enrol", **route_meta("attendance.edit"))
async def enrol(request: Request, staff: Editor, ctx: Ctx) -> Response:
    typed = await form_dict(request)
    body, errors = validate_form(forms.EnrolForm, blanks_to_none(typed, "site", "policy"))
    if body is not None:
        errors = unknown_employee(ctx.engine, staff.tenant, body.employee)
    if body is None or errors:
        return _page(request, staff, ctx, 422, enrol_values=typed, enrol_errors=errors)
    with write_tx(ctx.engine) as conn:
        token = create_enrolment(conn, staff.tenant, body.employee, staff.username,
                                 body.site, Policy(body.policy) if body.policy else None)
    link = f"{str(request.base_url).rstrip('/')}/phone/{staff.tenant}#t={token}"
    return _page(request, staff, ctx, link=link, link_employee=body.employee)


@router.post("/phones/{enrolment_id}/revoke", **route_meta("attendance.edit"))
async def revoke(request: Request, staff: Editor, ctx: Ctx, enrolment_id: EnrolmentId
                 ) -> Response:
    try:
        with write_tx(ctx.engine) as conn:
            revoke_enrolment(conn, staff.tenant, enrolment_id, staff.username)
    except BridgeError:
        return _page(request, staff, ctx, 422, enrol_errors={
            "__all__": _("That phone was already signed out.")})
    return RedirectResponse(f"/t/{staff.tenant}/phones?saved=revoked", 303)


@router.post("/phones/sites", **route_meta("attendance.edit"))
async def save_site(request: Request, staff: Editor, ctx: Ctx) -> Response:
    typed = await form_dict(request)
    body, errors = validate_form(forms.SiteForm,
                                 blanks_to_none(typed, "lat", "lon", "radius_m", "polygon"))
    if body is not None:
        try:
            fence = body.fence()
        except ValueError as exc:
            errors = {"polygon": _("The corners are not right: %(why)s") % {"why": str(exc)}}
    if body is None or errors:
        return _page(request, staff, ctx, 422, site_values=typed, site_errors=errors)
    with write_tx(ctx.engine) as conn:
        set_geofence(conn, staff.tenant, fence, staff.username)
    return RedirectResponse(f"/t/{staff.tenant}/phones?saved=site", 303)
