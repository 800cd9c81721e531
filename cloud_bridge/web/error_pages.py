"""Errors on human pages become HTML pages in the reader's language; JSON stays under
``/api`` (and for clients that ask only for JSON, such as the tablet's and kiosk's
scripts). The JSON side is FastAPI's own handlers and ``cloud_bridge/api/app.py``'s
``bridge_error_response``; this module is the HTML side, installed once by
``mount_web``. Details (the exception's text for developers) go to the log."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException

from cloud_bridge.errors import BridgeError
from cloud_bridge.web.form_errors import message_for
from cloud_bridge.web.page_templates import SHARED_TEMPLATES, page_templates
from contracts.i18n import N_
from contracts.i18n import gettext as _

log = logging.getLogger(__name__)
templates = page_templates(SHARED_TEMPLATES)

_TITLES = {
    400: N_("The address has a value this page cannot use"),
    401: N_("Please sign in"),
    403: N_("You do not have access to this page"),
    404: N_("Page not found"),
    405: N_("This page cannot be used that way"),
    409: N_("This clashes with data that already exists"),
    422: N_("The data cannot be accepted"),
    429: N_("Too many attempts"),
    503: N_("This is not available right now"),
}
_NEXT_STEP = {
    400: N_("Go back and choose the value from the page instead of typing the address."),
    401: N_("Sign in and open the page again."),
    403: N_("Ask the manager of your account for access if you need this page."),
    404: N_("Check the address, or go back to the start page."),
    405: N_("Go back and use the buttons on the page."),
    409: N_("Go back, change the data and try again."),
    422: N_("Go back, correct the data and try again."),
    429: N_("Wait a few minutes before you try again."),
    503: N_("Try again in a few minutes; if it lasts, tell your technician."),
}


def wants_json(request: Request) -> bool:
    if request.url.path.startswith("/api/") or "/api/" in request.url.path:
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_page(request: Request, status: int, detail: str = "",
               headers: dict[str, str] | None = None, meaning: int | None = None
               ) -> HTMLResponse:
    """``meaning``: the status whose title and next step fit, when it differs."""
    title = _(_TITLES.get(meaning or status, N_("Something went wrong")))
    step = _(_NEXT_STEP.get(meaning or status, N_("Go back and try again.")))
    response = templates.TemplateResponse(
        request, "error.html", {"status": status, "title": title, "detail": detail,
                                "next_step": step}, status_code=status)
    if headers:
        response.headers.update(headers)
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if wants_json(request):
        return await http_exception_handler(request, exc)
    log.info("%s %s -> %s: %s", request.method, request.url.path, exc.status_code, exc.detail)
    if exc.status_code in (301, 302, 303, 307, 308):  # a guard sending to the login page
        return await http_exception_handler(request, exc)
    return error_page(request, exc.status_code, headers=dict(exc.headers or {}))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if wants_json(request):
        return await request_validation_exception_handler(request, exc)
    log.info("%s %s -> 400: %s", request.method, request.url.path, exc.errors())
    names = []
    for error in exc.errors():
        where = error.get("loc", ())
        field = str(where[-1]) if where else ""
        names.append(f"{field}: {message_for(error)}")
    return error_page(request, 422, detail="; ".join(names), meaning=400)


def bridge_error_page(request: Request, exc: BridgeError) -> HTMLResponse:
    """A BridgeError a page did not handle: its status and, translated when the catalogs
    know the text, its message."""
    log.info("%s %s -> %s: %s", request.method, request.url.path, exc.status, exc)
    return error_page(request, exc.status, detail=_(str(exc)),
                      headers=dict(exc.headers) if exc.headers else None)


def install_error_pages(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.state.bridge_error_page = bridge_error_page
