"""Route guards: every tenant page names one permission, checked by WebAuth.guard
(session, tenant of the session, role, CSRF on POST). The permission is also stored on
the route (``openapi_extra``) so tests can enumerate routes and check each one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

from cloud_bridge.web.auth import Staff
from cloud_bridge.web.deps import web_context

PERMISSION_KEY = "x-permission"


def need(permission: str) -> Callable[[Request, str], Awaitable[Staff]]:
    async def dependency(request: Request, tenant: str) -> Staff:
        return await web_context(request).auth.guard(request, permission, tenant)

    return dependency


def route_meta(permission: str) -> dict[str, Any]:
    return {"openapi_extra": {PERMISSION_KEY: permission}, "include_in_schema": False}
