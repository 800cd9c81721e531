"""A ``Server-Timing: app;dur=<ms>`` header on every HTTP response of the bridge's app:
the time from the request reaching the app to the response headers leaving it, so a
load test can tell the server's share of a latency from the client's and the network's.

Hand-written as a pure ASGI middleware (a dozen lines) rather than Starlette's
``BaseHTTPMiddleware``, which runs the app in a separate task and adds its own cost to
every request. The duration ends when the headers are sent, which for the bridge's
pages (rendered whole, then sent) is the full server-side work.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"server-timing"


class ServerTimingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - started) * 1000
                headers: list[Any] = list(message.get("headers", []))
                headers.append((HEADER, f"app;dur={ms:.2f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_timed)
