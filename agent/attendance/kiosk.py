"""The time-clock kiosk page, served on localhost for Chromium in kiosk mode.

Plain HTML and a little JavaScript (no CDN: it must work with no internet); live
updates arrive by Server-Sent Events from the agent's LiveFeed. The page's texts come
from the catalogs (``/kiosk/i18n/<lang>``, the ``kiosk`` and ``agent`` domains among
them); it starts in the device's language (the process language, set from the config's
``language``) and shows the time of the site's zone (the config's ``timezone``), not the
browser's.
"""

from __future__ import annotations

import asyncio
import html
import json
import queue
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from agent.attendance.pin_guard import EMPLOYEE_ID_PATTERN
from agent.attendance.time_clock import TimeClock
from agent.live_feed import LiveFeed
from contracts.i18n import (
    LANGUAGE_NAMES,
    LANGUAGES,
    current_language,
    negotiate,
    plural_rule,
    script_catalog,
)
from contracts.i18n import gettext as _


class PinRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    terminal: str = Field(min_length=1, max_length=64)
    employee: str = Field(min_length=1, max_length=64, pattern=EMPLOYEE_ID_PATTERN)
    pin: str = Field(min_length=1, max_length=12)


class ChooseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    punch_type: str = Field(min_length=1, max_length=32)


def _static(name: str) -> str:
    return resources.files("agent.attendance").joinpath(f"static/{name}").read_text("utf-8")


def page_settings(terminal: str, zone: str, lang: str | None,
                  choose_window_s: float) -> dict[str, Any]:
    """What the page script needs to start: its terminal, the site's zone, the device's
    language (or one asked for with ?lang=), the languages it may switch to and how long
    a suggested punch type may be changed."""
    return {"terminal": terminal, "zone": zone, "choose_window_s": choose_window_s,
            "lang": negotiate(lang or current_language()),
            "default_lang": current_language(), "languages": list(LANGUAGES),
            "language_names": LANGUAGE_NAMES}


def catalog_json(lang: str) -> dict[str, Any]:
    chosen = negotiate(lang)
    return {"lang": chosen, "plural": plural_rule(chosen), "messages": script_catalog(chosen)}


def make_kiosk_router(clock: TimeClock, feed: LiveFeed,
                      online: Callable[[], bool | None]) -> APIRouter:
    router = APIRouter()
    page = _static("kiosk.html")
    script = _static("kiosk.js")
    zone = clock.rules.tz.key

    @router.get("/kiosk/static/kiosk.js")
    def kiosk_script() -> Response:
        return Response(script, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    @router.get("/kiosk/i18n/{lang}")
    def kiosk_catalog(lang: str) -> dict[str, Any]:
        return catalog_json(lang)

    @router.get("/kiosk/{terminal}", response_class=HTMLResponse)
    def kiosk_page(terminal: str, lang: str | None = None) -> HTMLResponse:
        if terminal not in clock.terminals:
            text = html.escape(_("This device has no time-clock terminal '%(terminal)s'.")
                               % {"terminal": terminal[:40]})
            return HTMLResponse(f'<!doctype html><html lang="{current_language()}"><meta '
                                f'charset="utf-8"><title>E-EDC</title><p>{text}</p></html>',
                                status_code=404)
        window_s = clock.terminals[terminal].choose_window_s
        settings = json.dumps(page_settings(terminal, zone, lang, window_s))
        settings = settings.replace("<", "\\u003c")
        return HTMLResponse(page.replace("__SETTINGS__", settings))

    @router.post("/kiosk/api/pin")
    def pin(req: PinRequest) -> dict[str, Any]:
        if req.terminal not in clock.terminals:
            raise HTTPException(404, "no such terminal")
        return clock.pin(req.terminal, req.employee, req.pin).as_dict()

    @router.post("/kiosk/api/pending/{pending_id}")
    def choose(pending_id: str, req: ChooseRequest) -> dict[str, Any]:
        try:
            return clock.choose(pending_id, req.punch_type).as_dict()
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        except LookupError as exc:
            raise HTTPException(409, str(exc)) from None

    @router.get("/kiosk/api/status")
    def status() -> dict[str, Any]:
        return {"online": online()}

    @router.get("/kiosk/events/{terminal}")
    async def events(terminal: str) -> StreamingResponse:
        if terminal not in clock.terminals:
            raise HTTPException(404, "no such terminal")
        return StreamingResponse(_stream(feed, terminal, online),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    return router


async def _stream(feed: LiveFeed, terminal: str,
                  online: Callable[[], bool | None]) -> AsyncIterator[str]:
    q = feed.subscribe()
    last_online: bool | None = None
    try:
        yield "retry: 1000\n\n"
        while True:
            state = online()
            if state != last_online:
                last_online = state
                yield f"data: {json.dumps({'kind': 'link', 'online': state})}\n\n"
            try:
                item = q.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.1)
                continue
            if item.get("kind") == "punch" and item.get("terminal") == terminal:
                yield f"data: {json.dumps(item, ensure_ascii=False)}\n\n"
    finally:
        feed.unsubscribe(q)
