"""Text with a NUL character is refused at the door (422), for every route.

PostgreSQL cannot store NUL in text ("A string literal cannot contain NUL (0x00)
characters": an HTTP 500) and SQLite would store it silently, so the two databases
disagree and no page can show it. No field of this product has a use for it, so one
pure-ASGI middleware checks the decoded path, the query string and urlencoded or JSON
bodies before any route runs, instead of a validator on each of ~100 text fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# a JSON escape \u0000 that is not itself escaped (an even number of backslashes before)
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_BODY_TYPES = ("application/json", "application/x-www-form-urlencoded")
MESSAGE = "text may not contain the NUL character (\\u0000 / %00)"


def _has_nul(content_type: str, body: bytes) -> bool:
    if content_type.startswith("application/json"):
        return _JSON_NUL.search(body) is not None
    return b"%00" in body or b"\x00" in body


class RefuseNulText:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            await self._refuse(send)
            return
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        if not content_type.startswith(_BODY_TYPES):
            await self.app(scope, receive, send)
            return
        body, tail = await self._read_body(receive)
        if _has_nul(content_type, body):
            await self._refuse(send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return tail if tail is not None else await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _read_body(receive: Receive) -> tuple[bytes, Message | None]:
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return b"".join(chunks), message
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks), None

    @staticmethod
    async def _refuse(send: Send) -> None:
        body = json.dumps({"detail": MESSAGE}).encode()
        await send({"type": "http.response.start", "status": 422,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
