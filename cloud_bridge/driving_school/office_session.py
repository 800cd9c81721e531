"""Signing in and out of the office pages (a form with a login-CSRF cookie)."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud_bridge.driving_school.access import BASE, safe_next, set_session_cookie
from cloud_bridge.driving_school.deps import School, SchoolSettings
from cloud_bridge.driving_school.office_pages import form_of, page
from cloud_bridge.web.auth import COOKIE, LoginRefused
from contracts.i18n import gettext as _

LOGIN_CSRF_COOKIE = "es_ds_login_csrf"

router = APIRouter(prefix=BASE, include_in_schema=False)


def login_page(request: Request, school: SchoolSettings, target: str, error: str = "",
               status: int = 200) -> HTMLResponse:
    # double submit: the form's token must match a cookie set with it, so another
    # site cannot sign a browser into the other site's account (login CSRF)
    token = secrets.token_urlsafe(24)
    response = page(request, "login.html", None, status, next=target, error=error,
                    login_csrf=token)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=school.auth.secure_cookies, path=f"{BASE}/login")
    return response


@router.get("/login")
def login_form(request: Request, school: School, next: str = "") -> HTMLResponse:
    return login_page(request, school, safe_next(next))


@router.post("/login")
async def login(request: Request, school: School) -> Response:
    form = await form_of(request)
    target = safe_next(form.get("next"))
    sent, expected = form.get("login_csrf", ""), request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not sent or not hmac.compare_digest(sent, expected):
        return login_page(request, school, target,
                          _("The form expired; please sign in again."), 403)
    client = request.client.host if request.client else "unknown"
    try:
        cookie, _staff = school.auth.login(form.get("username", ""),
                                           form.get("password", ""), client)
    except LoginRefused as exc:
        if exc.retry_after_s:
            return login_page(request, school, target, _(
                "Too many failed sign-ins; try again in %(s)d s.") % {"s": exc.retry_after_s},
                429)
        return login_page(request, school, target, _("Wrong username or password."), 401)
    response = RedirectResponse(target, 303)
    set_session_cookie(response, cookie, school.auth)
    return response


@router.post("/logout")
async def logout(request: Request, school: School) -> Response:
    await school.access.staff(request, "lessons.view")
    school.auth.logout(request.cookies.get(COOKIE))
    response = RedirectResponse(f"{BASE}/login", 303)
    response.delete_cookie(COOKIE, path="/")
    return response
