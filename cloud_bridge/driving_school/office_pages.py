"""What the office's pages share: the Jinja2 templates, rendering a page with the
session's CSRF token, the signed-in role's permissions and the school's name, redirects
with a message, reading a posted form. The pages themselves are one module per resource:
``office_session`` (sign-in), ``office_lessons`` (today's lessons, the logs per candidate
and per instructor and day, CSV), ``office_candidates``, ``office_record_card``,
``office_instructors``, ``office_vehicles``, ``office_courses``, ``office_school``."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.deps import school_settings
from cloud_bridge.driving_school.forms import DAY_FIELDS, LIMITS
from cloud_bridge.driving_school.lesson_sync import LOCAL_TZ, conflict_rule, lesson_types
from cloud_bridge.driving_school.school_profile import load_profile
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.page_templates import page_templates
from cloud_bridge.web.roles import allowed

templates = page_templates(Path(__file__).parent / "templates")


def today() -> str:
    return datetime.now(LOCAL_TZ).strftime("%Y-%m-%d")


def back(path: str, **params: str) -> RedirectResponse:
    """303 to a page of this module, with a message in the query string."""
    query = urlencode({k: v for k, v in params.items() if v})
    return RedirectResponse(f"{BASE}{path}" + (f"?{query}" if query else ""), 303)


def page(request: Request, name: str, staff: Staff | None, status: int = 200,
         **ctx: Any) -> HTMLResponse:
    can = {p: staff is not None and allowed(staff.role, p)
           for p in ("members.edit", "users.manage", "lessons.view", "receipts.view")}
    school = None
    if staff is not None:
        settings = school_settings(request)
        school = load_profile(settings.engine, staff.tenant, settings.school_name)
    return templates.TemplateResponse(request, name, {
        "staff": staff, "csrf": staff.csrf if staff else "", "can": can, "base": BASE,
        "school": school, "conflict_rule": conflict_rule(), "lesson_types": lesson_types(),
        "limits": LIMITS, "values": {}, "errors": {}, **ctx}, status_code=status)


def typed_day(iso: str) -> str:
    """An ISO date as a form field holds it, in every language: 3. 12. 2026."""
    try:
        d = date.fromisoformat(iso)
    except ValueError:
        return iso
    return f"{d.day}. {d.month}. {d.year}"


def shown(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as an edit form's values: dates as they are typed (3. 12. 2026)."""
    return {k: (typed_day(v) if k in DAY_FIELDS and v else ("" if v is None else v))
            for k, v in row.items()}


async def form_of(request: Request) -> dict[str, Any]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
