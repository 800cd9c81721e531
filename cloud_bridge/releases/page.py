"""The Releases page: each device's reported software version and last update, the
published releases per channel, the rollout (a share of the fleet, then all of it) and
its pause and rollback buttons (cloud_bridge/releases/rollout.py does the work).

The release folder and the address devices download from are the ones ``cloud-bridge
release`` uses: ``BRIDGE_RELEASES_DIR`` and ``BRIDGE_RELEASES_URL``. Starting, widening,
pausing and rolling back are for administrators (``fleet.enrol``, like enrolling a
device): they change the software of many devices at once; everyone who sees the fleet
sees the page.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from cloud_bridge.db_schema import devices, read_tx, write_tx
from cloud_bridge.releases.rollout import RetainedPublisher, Rollout, RolloutControl
from cloud_bridge.releases.store import ReleaseStore
from cloud_bridge.web import audit
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.form_errors import FieldErrors, validate_form
from cloud_bridge.web.guards import need, route_meta
from cloud_bridge.web.member_forms import form_dict
from cloud_bridge.web.nav import NAV, NavItem, nav_for
from cloud_bridge.web.page_templates import page_templates
from cloud_bridge.web.roles import allowed
from contracts.i18n import N_
from contracts.i18n import gettext as _
from contracts.release_manifest import CHANNELS

NAV.append(NavItem(N_("Releases"), "/releases", "fleet.view"))

templates = page_templates(Path(__file__).parent / "templates")
router = APIRouter(prefix="/t/{tenant}")
Viewer = Annotated[Staff, Depends(need("fleet.view"))]
Admin = Annotated[Staff, Depends(need("fleet.enrol"))]
NOTICES = {"started": N_("The release is offered to the chosen share of the fleet."),
           "widened": N_("The release is offered to more devices."),
           "paused": N_("The rollout is paused: no more devices are added."),
           "rolledback": N_("Every device that got the release is offered the previous one.")}


def NO_RETAINED() -> str:
    return _("Release offers need the bridge's MQTT broker (retained messages).")


class RolloutForm(BaseModel):
    model_config = ConfigDict(extra="ignore")
    channel: Annotated[str, Field(pattern=r"^(stable|beta)$")]
    version: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^\d+(\.\d+){0,3}$")]
    percent: Annotated[int, Field(ge=1, le=100)]


class WidenForm(BaseModel):
    model_config = ConfigDict(extra="ignore")
    channel: Annotated[str, Field(pattern=r"^(stable|beta)$")]
    percent: Annotated[int, Field(ge=1, le=100)]


class ChannelForm(BaseModel):
    model_config = ConfigDict(extra="ignore")
    channel: Annotated[str, Field(pattern=r"^(stable|beta)$")]


def update_states() -> dict[str, str]:
    return {"downloading": _("downloading"), "installing": _("installing"),
            "switched": _("on trial"), "confirmed": _("confirmed"),
            "rolled_back": _("rolled back"), "failed": _("failed")}


def _folder() -> Path:
    return Path(os.environ.get("BRIDGE_RELEASES_DIR", "releases"))


def _control(ctx: Ctx) -> RolloutControl:
    # the bridge's MQTT link publishes retained messages (a JetStream link refuses: below)
    return RolloutControl(_folder(), cast(RetainedPublisher, ctx.publisher),
                          os.environ.get("BRIDGE_RELEASES_URL", "https://localhost:8443"),
                          ctx.prefix)


def _device_rows(ctx: Ctx, tenant: str, rollouts: dict[str, Rollout | None]
                 ) -> list[dict[str, Any]]:
    with read_tx(ctx.engine) as conn:
        rows = conn.execute(select(devices.c.device, devices.c.online, devices.c.state)
                            .where(devices.c.tenant == tenant)
                            .order_by(devices.c.device)).all()
    out = []
    for device, online, state in rows:
        state = state or {}
        offered = {ch: r.offered.get(device) for ch, r in rollouts.items() if r}
        out.append({"device": device, "online": online, "version": state.get("version"),
                    "update": state.get("update") or {},
                    "offered": ", ".join(f"{ch} {v}" for ch, v in offered.items() if v)})
    return out


def _page(request: Request, staff: Staff, ctx: Ctx, status: int = 200,
          errors: FieldErrors | None = None, values: dict[str, str] | None = None,
          notice: str = "") -> HTMLResponse:
    control = _control(ctx)
    store = ReleaseStore(_folder())
    rollouts = {ch: control.load(staff.tenant, ch) for ch in CHANNELS}
    rows = _device_rows(ctx, staff.tenant, rollouts)
    channels = []
    for ch in CHANNELS:
        r = rollouts[ch]
        on_it = sum(1 for d in rows if r and d["version"] == r.version)
        channels.append({"name": ch, "versions": store.versions(ch), "rollout": r,
                         "percent": round(r.share * 100) if r else 0,
                         "offered": len(r.offered) if r else 0, "on_it": on_it})
    context = {"staff": staff, "nav": nav_for(staff.role), "tenant": staff.tenant,
               "csrf": staff.csrf, "devices": rows, "channels": channels,
               "errors": errors or {}, "values": values or {}, "notice": notice,
               "can_roll_out": allowed(staff.role, "fleet.enrol"),
               "channel_options": [(ch, ch) for ch in CHANNELS],
               "release_options": "; ".join(f"{ch} {', '.join(store.versions(ch))}"
                                            for ch in CHANNELS if store.versions(ch)),
               "update_states": update_states()}
    return templates.TemplateResponse(request, "releases.html", context, status_code=status)


@router.get("/releases", **route_meta("fleet.view"))
def releases(request: Request, staff: Viewer, ctx: Ctx, done: str = "") -> Response:
    notice = _(NOTICES[done]) if done in NOTICES else ""
    return _page(request, staff, ctx, notice=notice)


def _fleet(ctx: Ctx, tenant: str) -> list[str]:
    with read_tx(ctx.engine) as conn:
        return [r[0] for r in conn.execute(select(devices.c.device)
                                           .where(devices.c.tenant == tenant))]


def _refused(request: Request, staff: Staff, ctx: Ctx, typed: dict[str, str], field: str,
             message: str) -> HTMLResponse:
    return _page(request, staff, ctx, 422, errors={field: message}, values=typed)


@router.post("/releases/rollout", **route_meta("fleet.enrol"))
async def start_rollout(request: Request, staff: Admin, ctx: Ctx) -> Response:
    typed = await form_dict(request)
    body, errors = validate_form(RolloutForm, typed)
    if body is None:
        return _page(request, staff, ctx, 422, errors=errors, values=typed)
    if body.version not in ReleaseStore(_folder()).versions(body.channel):
        return _refused(request, staff, ctx, typed, "version",
                        _("This version is not published on this channel."))
    try:
        state = _control(ctx).start(staff.tenant, body.channel, body.version,
                                    body.percent / 100, _fleet(ctx, staff.tenant))
    except ValueError:  # a JetStream link publishes nothing retained
        return _refused(request, staff, ctx, typed, "percent", NO_RETAINED())
    _audit(ctx, staff, "release.rollout", state)
    return RedirectResponse(f"/t/{staff.tenant}/releases?done=started", 303)


@router.post("/releases/widen", **route_meta("fleet.enrol"))
async def widen_rollout(request: Request, staff: Admin, ctx: Ctx) -> Response:
    typed = await form_dict(request)
    body, errors = validate_form(WidenForm, typed)
    if body is None:
        return _page(request, staff, ctx, 422, errors=errors, values=typed)
    try:
        state = _control(ctx).widen(staff.tenant, body.channel, body.percent / 100,
                                    _fleet(ctx, staff.tenant))
    except ValueError:
        return _refused(request, staff, ctx, typed, "percent",
                        _("A rollout only widens: give a share above the current one."))
    _audit(ctx, staff, "release.widen", state)
    return RedirectResponse(f"/t/{staff.tenant}/releases?done=widened", 303)


@router.post("/releases/pause", **route_meta("fleet.enrol"))
async def pause_rollout(request: Request, staff: Admin, ctx: Ctx) -> Response:
    body, _errors = validate_form(ChannelForm, await form_dict(request))
    if body is None or _control(ctx).load(staff.tenant, body.channel) is None:
        return _page(request, staff, ctx, 422, notice=_("There is no rollout to pause."))
    _audit(ctx, staff, "release.pause", _control(ctx).pause(staff.tenant, body.channel))
    return RedirectResponse(f"/t/{staff.tenant}/releases?done=paused", 303)


@router.post("/releases/rollback", **route_meta("fleet.enrol"))
async def roll_back(request: Request, staff: Admin, ctx: Ctx) -> Response:
    body, _errors = validate_form(ChannelForm, await form_dict(request))
    if body is None:
        return _page(request, staff, ctx, 422, notice=_("There is no rollout to roll back."))
    try:
        state = _control(ctx).roll_back(staff.tenant, body.channel)
    except ValueError:
        return _page(request, staff, ctx, 422,
                     notice=_("There is no previous release to go back to."))
    _audit(ctx, staff, "release.rollback", state)
    return RedirectResponse(f"/t/{staff.tenant}/releases?done=rolledback", 303)


def _audit(ctx: Ctx, staff: Staff, action: str, state: Rollout) -> None:
    with write_tx(ctx.engine) as conn:
        audit.record(conn, staff, action, f"{state.channel} {state.version}",
                     {"share": state.share, "paused": state.paused,
                      "previous": state.previous, "offered": len(state.offered)})
