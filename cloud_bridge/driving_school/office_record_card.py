"""A candidate's record card (evidenčni karton vožnje): the printable page and the
"print record card" action, a command to the office's agent."""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from cloud_bridge.db_schema import read_tx
from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.card_command import send_print_record_card
from cloud_bridge.driving_school.deps import School, SchoolSettings
from cloud_bridge.driving_school.lesson_log import log_rows, record_card
from cloud_bridge.driving_school.office_candidates import candidate_view
from cloud_bridge.driving_school.office_pages import back, form_of, page
from cloud_bridge.driving_school.office_rows import one
from cloud_bridge.driving_school.schema import candidates
from cloud_bridge.driving_school.school_profile import load_profile
from cloud_bridge.param_bounds import RowIdPath
from cloud_bridge.web.auth import Staff
from contracts.i18n import gettext as _

_DEVICE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

router = APIRouter(prefix=BASE, include_in_schema=False)


def card_of(school: SchoolSettings, staff: Staff, candidate_id: int) -> dict[str, Any]:
    with read_tx(school.engine) as conn:
        card = record_card(conn, staff.tenant, candidate_id, load_profile(
            school.engine, staff.tenant, school.school_name)["name"])
    if card is None:
        raise HTTPException(404, "not found")
    return card


@router.get("/candidates/{candidate_id}/card")
async def candidate_card(request: Request, school: School, candidate_id: RowIdPath
                         ) -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    with read_tx(school.engine) as conn:
        rows = log_rows(conn, staff.tenant, candidate_id=candidate_id)
    return page(request, "card.html", staff, card=card_of(school, staff, candidate_id),
                rows=rows, printed=int(time.time() * 1000))


@router.post("/candidates/{candidate_id}/print-card")
async def print_card(request: Request, school: School, candidate_id: RowIdPath) -> Response:
    staff = await school.access.staff(request, "members.edit")
    if school.publisher is None:
        raise HTTPException(503, _("This server has no link to the office devices."))
    form = await form_of(request)
    device, printer = form.get("device", "").strip(), form.get("printer", "").strip()
    bad = {k: _("Enter a name like office-1 (letters, digits, - and _).")
           for k, v in (("device", device), ("printer", printer))
           if (v or k == "device") and not re.match(_DEVICE, v)}
    if bad:
        person = one(school.engine, candidates, staff.tenant, candidate_id)
        return candidate_view(request, school, staff, person, 422, print_values=form,
                              print_errors=bad)
    request_id = send_print_record_card(school.engine, school.publisher, school.prefix,
                                        staff.tenant, device,
                                        card_of(school, staff, candidate_id),
                                        printer or None, lifetimes=school.command_lifetimes)
    return back(f"/candidates/{candidate_id}", sent=request_id)
