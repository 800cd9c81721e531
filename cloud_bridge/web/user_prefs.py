"""A signed-in staff user's language, kept on the bridge so it follows them to another
browser: the language switch (``/lang/{code}``, language.py) also saves the choice for
the user of the session, and the login sets the language cookie from it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import Column, Engine, String, Table, delete, insert, select

from cloud_bridge.db_schema import write_tx
from cloud_bridge.web import language
from cloud_bridge.web.auth import COOKIE
from cloud_bridge.web.auth_schema import web_metadata
from cloud_bridge.web.deps import web_context
from contracts.i18n import LANGUAGES, negotiate

user_prefs = Table(
    "web_user_prefs", web_metadata,
    Column("username", String(120), primary_key=True),
    Column("lang", String(8), nullable=False),
)

router = APIRouter(include_in_schema=False)


def saved_language(engine: Engine, username: str) -> str | None:
    with engine.connect() as conn:
        lang = conn.execute(select(user_prefs.c.lang).where(
            user_prefs.c.username == username)).scalar()
    return lang if lang in LANGUAGES else None


def save_language(engine: Engine, username: str, lang: str) -> None:
    with write_tx(engine) as conn:
        conn.execute(delete(user_prefs).where(user_prefs.c.username == username))
        conn.execute(insert(user_prefs).values(username=username, lang=negotiate(lang)))


def set_language_cookie(response: RedirectResponse, lang: str) -> None:
    response.set_cookie(language.LANGUAGE_COOKIE, negotiate(lang), max_age=365 * 24 * 3600,
                        samesite="lax", httponly=False, path="/")


# the header's language switch: the cookie, and for a signed-in user their saved choice
@router.get("/lang/{code}")
def switch_and_remember(request: Request, code: str, next: str | None = None
                        ) -> RedirectResponse:
    response = language.switch_language(code, next)
    ctx = web_context(request)
    staff = ctx.auth.session(request.cookies.get(COOKIE))
    if staff is not None:
        save_language(ctx.engine, staff.username, code)
    return response
