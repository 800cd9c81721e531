"""Login and logout pages. The login form carries a token that must match a cookie set
with the form (double submit), so another site cannot log a browser into its account."""

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from cloud_bridge.web.auth import COOKIE, LoginRefused, WebAuth
from cloud_bridge.web.deps import web_context
from cloud_bridge.web.nav import home_path
from cloud_bridge.web.rendering import render
from cloud_bridge.web.user_prefs import saved_language, set_language_cookie
from contracts.i18n import gettext as _
from contracts.i18n import ngettext

LOGIN_CSRF_COOKIE = "es_login_csrf"


router = APIRouter(include_in_schema=False)


def web_auth(request: Request) -> WebAuth:
    return web_context(request).auth


Auth = Annotated[WebAuth, Depends(web_auth)]


def login_page(auth: WebAuth, request: Request, error: str = "", status: int = 200,
               headers: dict[str, str] | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    page = render(request, "login.html", None, status_code=status, error=error,
                  login_csrf=token)
    page.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                    secure=auth.secure_cookies, path="/login")
    for k, v in (headers or {}).items():
        page.headers[k] = v
    return page


@router.get("/")
def root(request: Request, auth: Auth) -> Response:
    staff = auth.session(request.cookies.get(COOKIE))
    if staff is None:
        return RedirectResponse("/login", 303)
    return RedirectResponse(home_path(staff.tenant, staff.role), 303)


@router.get("/login")
def login_form(request: Request, auth: Auth) -> Response:
    return login_page(auth, request)


@router.post("/login")
def login(request: Request, auth: Auth, username: Annotated[str, Form(max_length=120)],
          password: Annotated[str, Form(max_length=200)],
          csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        return login_page(auth, request, _("The form expired; please try again."), 403)
    client = request.client.host if request.client else "unknown"
    try:
        cookie, staff = auth.login(username, password, client)
    except LoginRefused as exc:
        if exc.retry_after_s:
            minutes = max(1, -(-exc.retry_after_s // 60))
            return login_page(auth, request, ngettext(
                "Too many failed logins. Try again in %(n)d minute.",
                "Too many failed logins. Try again in %(n)d minutes.", minutes)
                % {"n": minutes}, 429,
                              {"Retry-After": str(exc.retry_after_s)})
        return login_page(auth, request, _("Wrong username or password."), 401)
    response = RedirectResponse(home_path(staff.tenant, staff.role), 303)
    lang = saved_language(web_context(request).engine, staff.username)
    if lang:  # the language this user chose, in any browser
        set_language_cookie(response, lang)
    # the session cookie last: wrk (bench/wrk/session.lua) sees only the last
    # Set-Cookie of a response; browsers do not mind the order
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="lax",
                        secure=auth.secure_cookies, max_age=auth.session_ms // 1000)
    return response


@router.post("/logout")
async def logout(request: Request, auth: Auth) -> Response:
    cookie = request.cookies.get(COOKIE)
    staff = auth.session(cookie)
    if staff is not None:
        await auth.check_csrf(request, staff)  # a foreign page must not log you out
        auth.logout(cookie)
    elif cookie is None:
        raise HTTPException(401, "not logged in")
    response = RedirectResponse("/login", 303)
    response.delete_cookie(COOKIE)
    return response
