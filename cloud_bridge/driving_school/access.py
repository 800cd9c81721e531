"""Who is asking: staff sessions from ``cloud_bridge.web.auth.WebAuth`` and the
instructor record behind an instructor's login.

The tenant is the signed-in staff member's own, so every query of this module is scoped
by the session, never by anything in the URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request
from sqlalchemy import Engine, select

from cloud_bridge.driving_school.schema import instructors
from cloud_bridge.web.auth import COOKIE, Staff, WebAuth
from contracts.i18n import gettext as _

BASE = "/driving-school"
LOGIN_PATH = f"{BASE}/login"


class SchoolAccess:
    def __init__(self, engine: Engine, auth: WebAuth) -> None:
        self.engine = engine
        self.auth = auth

    async def staff(self, request: Request, permission: str) -> Staff:
        """The signed-in staff member allowed ``permission`` (CSRF checked on writes);
        a page without a session redirects to this module's login."""
        staff = self.auth.session(request.cookies.get(COOKIE))
        if staff is None:
            if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                target = quote(request.url.path + (f"?{request.url.query}"
                                                   if request.url.query else ""))
                raise HTTPException(303, headers={"Location": f"{LOGIN_PATH}?next={target}"})
            raise HTTPException(401, _("Please sign in first."))
        return await self.auth.guard(request, permission, staff.tenant)

    def instructor(self, staff: Staff) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(instructors).where(
                instructors.c.tenant == staff.tenant, instructors.c.user_id == staff.user_id,
                instructors.c.active.is_(True))).mappings().first()
        if row is None:
            raise HTTPException(403, _("This sign-in is not an active instructor of the "
                                       "school; ask the office."))
        return dict(row)


def set_session_cookie(response: Any, cookie: str, auth: WebAuth) -> None:
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="lax",
                        secure=auth.secure_cookies, path="/",
                        max_age=auth.session_ms // 1000)


def safe_next(target: str | None) -> str:
    # only paths of this module: an open redirect would let a link send staff elsewhere
    if target and target.startswith(BASE + "/") and "//" not in target and "\\" not in target:
        return target
    return f"{BASE}/"
