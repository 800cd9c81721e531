"""The translations for page scripts (live entries, the member's phone QR page) as JSON:
``GET /i18n/{lang}.json`` -> ``{"lang", "plural", "messages"}``. Scripts translate with
``t("English")`` and ``tn("one", "many", n)`` over it (static/i18n.js); browsers may
cache it for a day, so a page that loses the network keeps its texts."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from contracts.i18n import negotiate, plural_rule, script_catalog

router = APIRouter(include_in_schema=False)


@router.get("/i18n/{lang}.json")
def catalog(lang: str) -> JSONResponse:
    chosen = negotiate(lang)
    return JSONResponse({"lang": chosen, "plural": plural_rule(chosen),
                         "messages": script_catalog(chosen)},
                        headers={"Cache-Control": "public, max-age=86400"})
