"""The till's page and API on the agent's local HTTP server (``/till``).

Served like the time-clock kiosk (agent/attendance/kiosk.py): plain HTML and JavaScript
from the package (no CDN, works with no internet), texts from the catalogs
(``/till/i18n/<lang>``, the ``till`` domain among them), Slovenian by default. The API
needs the session token of a signed-in cashier in ``X-Till-Session``."""

from __future__ import annotations

import ipaddress
import json
import time
from decimal import Decimal
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from agent.errors import ConfigError
from agent.pos.errors import JobRejected, UnknownReceipt
from agent.pos.job import money_value
from agent.pos.money import to_cents
from agent.till.cashiers import SignInRefused
from agent.till.sale import NotPermitted
from agent.till.ticket_issuer import TicketsUnavailable
from agent.till.till import Till
from agent.till.voucher_pay import VoucherRefused
from contracts.i18n import (
    LANGUAGE_NAMES,
    LANGUAGES,
    current_language,
    negotiate,
    plural_rule,
    script_catalog,
)


class CashMoveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["float", "in", "out"]
    amount: Annotated[Decimal, BeforeValidator(money_value)]
    note: str = Field(default="", max_length=100)


class DisplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product: str = Field(min_length=1, max_length=40)
    total_cents: int = Field(ge=0, le=10**11)


class SignInRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cashier: str = Field(min_length=1, max_length=12, pattern=r"^[0-9]+$")
    pin: str = Field(min_length=1, max_length=12)


def _static(name: str) -> str:
    return resources.files("agent.till").joinpath(f"static/{name}").read_text("utf-8")


def _refused(permission: str) -> JSONResponse:
    return JSONResponse({"problem": "not_permitted", "permission": permission},
                        status_code=403)


def _on_device(request: Request) -> bool:
    """Whether the request comes from the device itself (the till's touch screen)."""
    host = request.client.host if request.client is not None else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _no_tickets(exc: TicketsUnavailable) -> JSONResponse:
    return JSONResponse({"problem": "tickets_unavailable", "reason": exc.problem,
                         "detail": exc.detail}, status_code=409)


def make_till_router(till: Till) -> APIRouter:
    router = APIRouter()
    page, script = _static("till.html"), _static("till.js")

    @router.get("/till/static/till.js")
    def till_script() -> Response:
        return Response(script, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    @router.get("/till/i18n/{lang}")
    def till_catalog(lang: str) -> dict[str, Any]:
        chosen = negotiate(lang)
        return {"lang": chosen, "plural": plural_rule(chosen),
                "messages": script_catalog(chosen)}

    @router.get("/till", response_class=HTMLResponse)
    def till_page(lang: str | None = None) -> HTMLResponse:
        settings = {"lang": negotiate(lang or current_language()),
                    "languages": list(LANGUAGES), "language_names": LANGUAGE_NAMES}
        text = json.dumps(settings).replace("<", "\\u003c")
        return HTMLResponse(page.replace("__SETTINGS__", text))

    _session_routes(router, till)
    _sale_routes(router, till)
    _cash_routes(router, till)
    _ticket_routes(router, till)
    return router


def _session_routes(router: APIRouter, till: Till) -> None:
    """Sign-in and -out, the catalogue and the customer's display line."""

    @router.post("/till/api/signin")
    def sign_in(req: SignInRequest) -> JSONResponse:
        try:
            session = till.cashiers.sign_in(req.cashier, req.pin)
        except SignInRefused as exc:
            return JSONResponse({"problem": exc.problem}, status_code=401)
        return JSONResponse(session.public())

    @router.get("/till/api/reads")
    def reads(request: Request, after: int = 0,
              x_till_session: str | None = Header(default=None)) -> dict[str, Any]:
        # a card's sign-in goes, once, to the device's own screen; products need a session
        signed_in = till.cashiers.session(x_till_session or "") is not None
        last, found = till.reads.since(after, signed_in, _on_device(request))
        return {"last": last, "reads": found}

    @router.post("/till/api/signout")
    def sign_out(x_till_session: str | None = Header(default=None)) -> dict[str, bool]:
        till.cashiers.sign_out(x_till_session or "")
        return {"ok": True}

    @router.get("/till/api/catalogue")
    def catalogue(x_till_session: str | None = Header(default=None)) -> dict[str, Any]:
        till.session(x_till_session)
        return till.catalogue.to_dict()

    @router.put("/till/api/catalogue")
    async def new_catalogue(request: Request) -> JSONResponse:
        # authenticated by the tenant's signature on the envelope, not by a session
        data = await request.body()
        try:
            version = await run_in_threadpool(till.update_catalogue, data)
        except ConfigError as exc:
            return JSONResponse({"problem": "catalogue_refused", "detail": str(exc)},
                                status_code=422)
        return JSONResponse({"version": version})

    @router.post("/till/api/display")
    def customer_line(req: DisplayRequest,
                      x_till_session: str | None = Header(default=None)) -> dict[str, bool]:
        till.session(x_till_session)
        product = till.catalogue.products.get(req.product)
        if product is not None:
            till.display.item(product.name, req.total_cents)
        return {"shown": product is not None}


def _sale_routes(router: APIRouter, till: Till) -> None:
    """Sales and refunds."""

    @router.post("/till/api/sale")
    def sale(body: dict[str, Any],
             x_till_session: str | None = Header(default=None)) -> JSONResponse:
        session = till.session(x_till_session)
        try:
            return JSONResponse(till.sell(session, body))
        except NotPermitted as exc:
            return _refused(exc.permission)
        except JobRejected as exc:
            return JSONResponse({"problem": exc.code, "detail": exc.message}, status_code=422)
        except TicketsUnavailable as exc:
            return _no_tickets(exc)
        except VoucherRefused as exc:
            return JSONResponse({"problem": "voucher_refused", "reason": exc.problem,
                                 "detail": exc.detail}, status_code=409)

    @router.get("/till/api/receipts/{invoice_id}")
    def receipt_lines(invoice_id: str,
                      x_till_session: str | None = Header(default=None)) -> JSONResponse:
        session = till.session(x_till_session)
        if not session.cashier.may_refund:
            return _refused("refund")
        try:
            return JSONResponse({"invoice_id": invoice_id,
                                 "lines": till.service.refundable(invoice_id)})
        except UnknownReceipt:
            return JSONResponse({"problem": "unknown_receipt"}, status_code=404)

    @router.post("/till/api/refund")
    def refund(body: dict[str, Any],
               x_till_session: str | None = Header(default=None)) -> JSONResponse:
        session = till.session(x_till_session)
        if "operator" in body:
            return JSONResponse({"problem": "invalid_refund"}, status_code=422)
        try:
            return JSONResponse(till.refund(session, body))
        except NotPermitted as exc:
            return _refused(exc.permission)
        except UnknownReceipt:
            return JSONResponse({"problem": "unknown_receipt"}, status_code=404)
        except JobRejected as exc:
            return JSONResponse({"problem": exc.code, "detail": exc.message}, status_code=422)



def _cash_routes(router: APIRouter, till: Till) -> None:
    """Cash moves, the day's closing and the drawer."""

    @router.post("/till/api/cash")
    def cash_move(req: CashMoveRequest,
                  x_till_session: str | None = Header(default=None)) -> JSONResponse:
        session = till.session(x_till_session)
        if req.kind != "float" and not session.cashier.may_open_drawer:
            return _refused("drawer")
        cents = to_cents(req.amount)
        if cents <= 0:
            return JSONResponse({"problem": "invalid_amount"}, status_code=422)
        till.day_end.move(req.kind, cents, session.cashier.name, req.note)
        return JSONResponse({"drawer": till.kick(f"cash {req.kind}") if till.drawer_kick
                             else None})

    @router.post("/till/api/close")
    def close(x_till_session: str | None = Header(default=None)) -> JSONResponse:
        session = till.session(x_till_session)
        if not session.cashier.may_close_day:
            return _refused("close")
        return JSONResponse(till.day_end.close(session.cashier.name))

    @router.post("/till/api/drawer")
    def drawer(x_till_session: str | None = Header(default=None)) -> JSONResponse:
        session = till.session(x_till_session)
        if not session.cashier.may_open_drawer:
            return _refused("drawer")
        return JSONResponse({"drawer": till.kick("no sale: " + session.cashier.name)})


def _ticket_routes(router: APIRouter, till: Till) -> None:
    """The till's ticket issuer: its public key and the delegation from the bridge."""

    @router.get("/till/api/tickets/issuer")
    def issuer() -> JSONResponse:
        if till.tickets is None:
            return JSONResponse({"problem": "no_tenant_key"}, status_code=404)
        return JSONResponse(till.tickets.issuer.status(int(time.time())))

    @router.put("/till/api/tickets/delegation")
    async def delegation(request: Request) -> JSONResponse:
        # authenticated by the tenant's signature inside the text, not by a session
        if till.tickets is None:
            return JSONResponse({"problem": "no_tenant_key"}, status_code=404)
        body = await request.body()
        try:
            text = body[:1000].decode("ascii")
            installed = till.tickets.issuer.install(text, int(time.time()))
        except UnicodeDecodeError:
            return JSONResponse({"problem": "delegation_malformed"}, status_code=422)
        except TicketsUnavailable as exc:
            return JSONResponse({"problem": exc.problem, "detail": exc.detail},
                                status_code=422)
        return JSONResponse({"delegation_valid_to": installed.valid_to})
