"""The time-clock kiosk page, served on localhost for Chromium in kiosk mode.

Plain HTML and a little JavaScript (no CDN: it must work with no internet); live
updates arrive by Server-Sent Events from the agent's LiveFeed.
"""

from __future__ import annotations

import asyncio
import json
import queue
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from agent.attendance.time_clock import TimeClock
from agent.live_feed import LiveFeed


class PinRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    terminal: str = Field(min_length=1, max_length=64)
    employee: str = Field(min_length=1, max_length=64)
    pin: str = Field(min_length=1, max_length=12)


class ChooseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    punch_type: str = Field(min_length=1, max_length=32)


def make_kiosk_router(clock: TimeClock, feed: LiveFeed,
                      online: Callable[[], bool | None]) -> APIRouter:
    router = APIRouter()
    page = resources.files("agent.attendance").joinpath("static/kiosk.html").read_text("utf-8")

    @router.get("/kiosk/{terminal}", response_class=HTMLResponse)
    def kiosk_page(terminal: str) -> str:
        if terminal not in clock.terminals:
            raise HTTPException(404, f"no terminal '{terminal[:40]}'")
        return page.replace("__TERMINAL__", json.dumps(terminal))

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
