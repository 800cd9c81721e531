"""The staff page that issues a device's one-time enrolment code (docs/technician.md §3):
device id, site, how long the code lives, and the device's peripherals as TOML. The code
is shown once, with the command the technician runs on the device; only its hash is kept.
"""

import re
import time
import tomllib
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response

from cloud_bridge.api_models import ID_PATTERN
from cloud_bridge.db_schema import write_tx
from cloud_bridge.enrolment import issue_code
from cloud_bridge.enrolment_service import NotReady, check_ready, enrolment_codes
from cloud_bridge.errors import Invalid
from cloud_bridge.web import audit
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.guards import need, route_meta
from cloud_bridge.web.nav import NAV, NavItem
from cloud_bridge.web.rendering import render
from contracts.device_config import DeviceConfigError
from contracts.i18n import N_
from contracts.i18n import gettext as _

TTL_HOURS = (1, 24, 72, 168)
EXAMPLE_PROFILE = """timezone = "Europe/Ljubljana"

[[gates]]
id = "g1"
url = "sim:"
zone = "main"

[[readers]]
id = "entry"
url = "sim:"
gate = "g1"
direction = "in"
"""
# what staff read on the page (English msgids, translated where shown)
TEXT = {
    "bad_id": N_("Use 1 to 64 letters, digits or '_.-', starting with a letter or digit."),
    "bad_ttl": N_("Choose one of the offered options."),
    "bad_toml": N_("The device profile is not valid TOML: %(error)s"),
    "bad_profile": N_("The device profile is not valid: %(error)s"),
    "not_ready": N_("This server cannot enrol devices yet: %(error)s"),
}

NAV.insert(1, NavItem(N_("New device"), "/enrolment", "fleet.enrol"))  # right after Fleet


class FormError(Invalid):
    def __init__(self, message: str, field: str = "__all__") -> None:
        super().__init__(message)
        self.field = field


def _read_form(form: dict[str, str]) -> tuple[str, str, int, dict[str, Any]]:
    device, site = form.get("device", "").strip(), form.get("site", "").strip()
    for field, value in (("device", device), ("site", site)):
        if not re.fullmatch(ID_PATTERN, value):
            raise FormError(_(TEXT["bad_id"]), field)
    hours = form.get("ttl_hours", "24")
    if not hours.isdigit() or int(hours) not in TTL_HOURS:
        raise FormError(_(TEXT["bad_ttl"]), "ttl_hours")
    try:
        profile = tomllib.loads(form.get("profile", ""))
    except tomllib.TOMLDecodeError as exc:
        raise FormError(_(TEXT["bad_toml"]) % {"error": exc}, "profile") from None
    return device, site, int(hours), profile


router = APIRouter(prefix="/t/{tenant}")
_CA_DIR_KEY = "enrolment_ca_dir"


def mount_enrolment_page(app: FastAPI, ca_dir: Path | None) -> None:
    """Called once by the app factory, after ``mount_web``."""
    setattr(app.state, _CA_DIR_KEY, ca_dir)
    app.include_router(router)


def enrolment_ca_dir(request: Request) -> Path | None:
    return cast(Path | None, getattr(request.app.state, _CA_DIR_KEY))


CaDir = Annotated[Path | None, Depends(enrolment_ca_dir)]
Enroller = Annotated[Staff, Depends(need("fleet.enrol"))]


@router.get("/enrolment", **route_meta("fleet.enrol"))
def form_page(request: Request, staff: Enroller) -> Response:
    return render(request, "enrolment.html", staff, form={"profile": EXAMPLE_PROFILE,
                                                          "ttl_hours": "24"},
                  ttl_hours=TTL_HOURS, issued=None, errors={})


@router.post("/enrolment", **route_meta("fleet.enrol"))
async def issue(request: Request, staff: Enroller, ctx: Ctx, ca_dir: CaDir) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}
    try:
        device, site, hours, profile = _read_form(form)
        check_ready(ca_dir, staff.tenant)
        issued = issue_code(ctx.engine, enrolment_codes, tenant=staff.tenant,
                            device=device, site=site, profile=profile,
                            ttl_s=hours * 3600, created_by=staff.username,
                            now_ms=int(time.time() * 1000))
    except (FormError, NotReady, DeviceConfigError) as exc:
        key = {NotReady: "not_ready", DeviceConfigError: "bad_profile"}.get(type(exc))
        error = _(TEXT[key]) % {"error": exc} if key else str(exc)
        field = exc.field if isinstance(exc, FormError) else (
            "profile" if key == "bad_profile" else "__all__")
        return render(request, "enrolment.html", staff, status_code=422,
                      form=form, ttl_hours=TTL_HOURS, issued=None,
                      errors={field: error[:500]})
    with write_tx(ctx.engine) as conn:  # the code itself is never audited
        audit.record(conn, staff, "device.enrolment_code", device,
                     {"site": site, "expires_at": issued.expires_at})
    bridge_url = str(request.base_url).rstrip("/")
    return render(request, "enrolment.html", staff, form={**form, "device": ""},
                  ttl_hours=TTL_HOURS, issued=issued, bridge_url=bridge_url, errors={})
