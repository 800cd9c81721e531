"""The POS-on-the-LAN endpoint: a FastAPI router for the agent's local HTTP server.

Bearer token from the config (compared in constant time, checked before the body is
read). The body is read in chunks and refused with 413 as soon as it passes the limit
(or at once from Content-Length), so a 10 MB payload is never held in memory.

  POST /pos/v1/receipts                      a print job -> the receipt (201, or 200 if repeated)
  GET  /pos/v1/receipts/{invoice_id}         state of one receipt
  POST /pos/v1/receipts/{invoice_id}/reprint print again ("KOPIJA n")
  GET  /pos/v1/status                        counts, queue depth, receipts at risk
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from agent.pos.errors import IdempotencyConflict, JobRejected, UnknownReceipt
from agent.pos.service import ReceiptService
from drivers.errors import DriverError


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


class _TooLarge(Exception):
    pass


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def make_pos_router(service: ReceiptService, token: Callable[[], str],
                    max_body_bytes: int) -> APIRouter:
    router = APIRouter(prefix="/pos/v1")

    def authorised(request: Request) -> bool:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.encode(),
                                                                  token().encode())

    def unauthorised() -> JSONResponse:
        resp = _error(401, "unauthorised", "missing or wrong bearer token")
        resp.headers["WWW-Authenticate"] = "Bearer"
        return resp

    async def call(fn: Callable[..., Any], *args: Any, status: int = 200) -> JSONResponse:
        try:
            result = await run_in_threadpool(fn, *args)
        except IdempotencyConflict as exc:
            return _error(409, exc.code, exc.message)
        except JobRejected as exc:
            return _error(422, exc.code, exc.message)
        except UnknownReceipt as exc:
            return _error(404, "unknown_receipt", str(exc))
        except DriverError as exc:
            return _error(503, "printer_unavailable", str(exc))
        if hasattr(result, "to_dict"):
            body = result.to_dict()
            if body.get("duplicate"):
                status = 200
            return JSONResponse(body, status_code=status)
        return JSONResponse(result, status_code=status)

    @router.post("/receipts")
    async def create_receipt(request: Request) -> JSONResponse:
        if not authorised(request):
            return unauthorised()
        try:
            body = await _read_limited(request, max_body_bytes)
        except _TooLarge:
            return _error(413, "too_large", f"a print job is at most {max_body_bytes} bytes")
        try:
            raw = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _error(400, "bad_json", "the body is not JSON")
        return await call(service.submit, raw, status=201)

    @router.get("/receipts/{invoice_id}")
    async def get_receipt(invoice_id: str, request: Request) -> JSONResponse:
        if not authorised(request):
            return unauthorised()
        return await call(service.status, invoice_id)

    @router.post("/receipts/{invoice_id}/reprint")
    async def reprint(invoice_id: str, request: Request) -> JSONResponse:
        if not authorised(request):
            return unauthorised()
        return await call(service.reprint, invoice_id)

    @router.get("/status")
    async def status(request: Request) -> JSONResponse:
        if not authorised(request):
            return unauthorised()
        return await call(service.summary)

    return router
