"""The member's own notice page (issue 18, part 4): every e-mail to a member ends with a
link to it, ``/member-notices/{tenant}/{member}#k=<token>`` (notice_optouts.optout_link).
As on the member's QR page (member_qr.py) the secret sits in the URL fragment, never
sent to a server or written to a log; the page's script sends it as a Bearer token to
read and change the member's choice. Wrong tokens and unknown members get the same 404.

Turning notices off writes the opt-out ``all`` that every member notice respects
(membership expiring, punch card running low, voucher bought, waiver to sign); turning
them on again removes every opt-out of the member."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, select

from cloud_bridge.db_schema import members, read_tx, write_tx
from cloud_bridge.member_qr import MemberId, TenantId, _security_headers
from cloud_bridge.notice_optouts import (
    OPTOUT_TOKEN_CHARS,
    ensure_optout_schema,
    oneclick_token,
    opt_in,
    opt_out,
    opted_out,
    optout_token,
)
from cloud_bridge.web.page_templates import page_templates
from contracts.i18n import N_, gettext, use_language

_PAGE = page_templates(Path(__file__).parent / "web" / "templates")

# what the page's script says (templates/member_notices.html)
PAGE_TEXTS = (
    N_("You receive our messages: membership expiring, punch card running low, "
       "voucher bought, waiver to sign."),
    N_("You receive no messages from us."),
    N_("Stop the messages"),
    N_("Send me messages again"),
    N_("This link is not valid. Ask the reception for a new one."),
    N_("No connection: try again."),
)


class Choice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    opted_out: bool


def make_notice_optout_router(engine: Engine, link_key: bytes) -> APIRouter:
    if len(link_key) < 32:
        raise ValueError("the member link key must be at least 32 random bytes")
    ensure_optout_schema(engine)
    router = APIRouter(prefix="/member-notices", tags=["member-notices"])
    not_found = HTTPException(404, "unknown member link", headers={"Cache-Control": "no-store"})

    @router.get("/{tenant}/{member_id}", response_class=HTMLResponse)
    def page(request: Request, tenant: TenantId, member_id: MemberId) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        with use_language(request.cookies.get("lang")):
            return _PAGE.TemplateResponse(
                request, "member_notices.html",
                {"nonce": nonce, "state_url": f"/member-notices/{tenant}/{member_id}/state",
                 "catalog": {text: gettext(text) for text in PAGE_TEXTS}},
                headers=_security_headers(nonce))

    def check(tenant: str, member_id: str, authorization: str | None) -> None:
        presented = (authorization or "").removeprefix("Bearer ").strip()
        expected = optout_token(link_key, tenant, member_id)
        if len(presented) != OPTOUT_TOKEN_CHARS or not hmac.compare_digest(
                presented.encode(), expected.encode()):
            raise not_found
        with read_tx(engine) as conn:
            if conn.execute(select(members.c.id).where(
                    members.c.tenant == tenant, members.c.id == member_id)).first() is None:
                raise not_found

    @router.get("/{tenant}/{member_id}/state")
    def state(tenant: TenantId, member_id: MemberId,
              authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
        check(tenant, member_id, authorization)
        with read_tx(engine) as conn:
            out = opted_out(conn, tenant, member_id)
        return JSONResponse({"opted_out": out}, headers=_security_headers())

    @router.post("/{tenant}/{member_id}/one-click")
    def one_click(tenant: TenantId, member_id: MemberId,
                  k: Annotated[str, Query(max_length=64)] = "") -> Response:
        """RFC 8058: the mail client POSTs ``List-Unsubscribe=One-Click`` here, with no
        cookie and no page; the token in the query can only turn notices off."""
        expected = oneclick_token(link_key, tenant, member_id)
        if not hmac.compare_digest(k.encode(), expected.encode()):
            raise not_found
        with write_tx(engine) as conn:
            if conn.execute(select(members.c.id).where(
                    members.c.tenant == tenant, members.c.id == member_id)).first() is None:
                raise not_found
            opt_out(conn, tenant, member_id)
        return Response(status_code=200, headers=_security_headers())

    @router.put("/{tenant}/{member_id}/state")
    def choose(tenant: TenantId, member_id: MemberId, body: Choice,
               authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
        check(tenant, member_id, authorization)
        with write_tx(engine) as conn:
            (opt_out if body.opted_out else opt_in)(conn, tenant, member_id)
        return JSONResponse({"opted_out": body.opted_out}, headers=_security_headers())

    return router
