"""Which language a person reads the pages in: Slovenian unless they switched.

``LanguageMiddleware`` sets the request's language (contracts/i18n.py) from the ``lang``
cookie before any route runs, so templates, form messages and error pages all follow
it; ``switch_language`` answers the switch in every page's header (``GET /lang/{code}``):
it sets the cookie and returns to the page it was pressed on (only a path on this site).
The bridge routes it through ``user_prefs``, which also saves a signed-in user's choice;
``router`` is the cookie-only switch for an app without staff accounts."""

from __future__ import annotations

from http.cookies import SimpleCookie

from fastapi import APIRouter
from fastapi.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from contracts.i18n import negotiate, set_language, use_language

LANGUAGE_COOKIE = "lang"
_YEAR_S = 365 * 24 * 3600


def cookie_language(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed Cookie header: the default language
                return negotiate(None)
            morsel = jar.get(LANGUAGE_COOKIE)
            return negotiate(morsel.value if morsel else None)
    return negotiate(None)


class LanguageMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with use_language(cookie_language(scope)):
            await self.app(scope, receive, send)


def safe_next(target: str | None) -> str:
    """Only a path of this site: never an absolute or protocol-relative URL."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


router = APIRouter(include_in_schema=False)


@router.get("/lang/{code}")
def switch_language(code: str, next: str | None = None) -> RedirectResponse:
    chosen = set_language(code)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(LANGUAGE_COOKIE, chosen, max_age=_YEAR_S, samesite="lax",
                        httponly=False, path="/")
    return response
