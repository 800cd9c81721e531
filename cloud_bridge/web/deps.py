"""The FastAPI dependency behind every web route: the app's WebContext, stored once on
``app.state`` by the app factory (``mount_web``), so routes live at module level."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, FastAPI, Request

from cloud_bridge.web.context import WebContext

_STATE_KEY = "web_context"


def install_context(app: FastAPI, ctx: WebContext) -> None:
    """Called once by the app factory (``mount_web``)."""
    setattr(app.state, _STATE_KEY, ctx)


def web_context(request: Request) -> WebContext:
    return cast(WebContext, getattr(request.app.state, _STATE_KEY))


Ctx = Annotated[WebContext, Depends(web_context)]

