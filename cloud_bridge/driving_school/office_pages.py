"""What the office's pages share: the Jinja2 templates, rendering a page with the
session's CSRF token and the signed-in role's permissions, redirects with a message,
reading a posted form. The pages themselves are one module per resource:
``office_session`` (sign-in), ``office_lessons`` (today's lessons, the logs per candidate
and per instructor and day, CSV), ``office_candidates``, ``office_record_card``,
``office_instructors``, ``office_vehicles``, ``office_courses``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.lesson_sync import CONFLICT_RULE, LESSON_TYPES, LOCAL_TZ
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.page_templates import page_templates
from cloud_bridge.web.roles import allowed

templates = page_templates(Path(__file__).parent / "templates")


def today() -> str:
    return datetime.now(LOCAL_TZ).strftime("%Y-%m-%d")


def _ms_local(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


templates.env.filters["local_ms"] = _ms_local


def back(path: str, **params: str) -> RedirectResponse:
    """303 to a page of this module, with a message in the query string."""
    query = urlencode({k: v for k, v in params.items() if v})
    return RedirectResponse(f"{BASE}{path}" + (f"?{query}" if query else ""), 303)


def page(request: Request, name: str, staff: Staff | None, status: int = 200,
         **ctx: Any) -> HTMLResponse:
    can = {p: staff is not None and allowed(staff.role, p)
           for p in ("members.edit", "users.manage", "lessons.view")}
    return templates.TemplateResponse(request, name, {
        "staff": staff, "csrf": staff.csrf if staff else "", "can": can, "base": BASE,
        "conflict_rule": CONFLICT_RULE, "lesson_types": LESSON_TYPES, **ctx},
        status_code=status)


async def form_of(request: Request) -> dict[str, Any]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
