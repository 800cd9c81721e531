"""What every route of the JSON API depends on: the context (engine, keys, change feed,
publisher) set on the app by ``create_app``, the bearer-token check, the tenant in the
path, and the transactions a route runs in."""

# no "from __future__ import annotations": FastAPI resolves the dependency signatures

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, ClassVar, TypeVar

from fastapi import Depends, Path, Query, Request
from sqlalchemy import Connection, Engine

from cloud_bridge import change_log
from cloud_bridge.api_models import ID_PATTERN
from cloud_bridge.change_feed import ChangeFeed, Publisher
from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.errors import NotFound, Unauthorized
from cloud_bridge.membership_ops import Record
from cloud_bridge.tenant_keys import TenantKeyStore
from contracts.command_expiry import CommandLifetimes

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ApiContext:
    engine: Engine
    keys: TenantKeyStore
    feed: ChangeFeed
    publisher: Publisher  # device commands
    prefix: str
    api_token: str | None  # None only with --insecure-dev
    # how long a device command stays valid, per class (BridgeSettings)
    command_lifetimes: CommandLifetimes = field(default_factory=CommandLifetimes)


def api_context(request: Request) -> ApiContext:
    """The context ``create_app`` put on the app."""
    ctx: ApiContext = request.app.state.api_context
    return ctx


Ctx = Annotated[ApiContext, Depends(api_context)]
TenantId = Annotated[str, Path(pattern=ID_PATTERN, description="tenant id")]
EntityId = Annotated[str, Path(pattern=ID_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=1000)]
MemberFilter = Annotated[str | None, Query(pattern=ID_PATTERN)]


class TokenRefused(Unauthorized):
    headers: ClassVar[Mapping[str, str] | None] = {"WWW-Authenticate": "Bearer"}


def authorise(request: Request, tenant: str, ctx: Ctx) -> None:
    """The operator's token (``serve --api-token``) opens every tenant; a tenant's own
    token (``cloud-bridge tenant token``) opens that tenant only."""
    if ctx.api_token is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token and (
            hmac.compare_digest(token.encode(), ctx.api_token.encode())
            or ctx.keys.api_token_ok(tenant, token)):
        return
    raise TokenRefused("missing or wrong API token (Authorization: Bearer …)")


def known_tenant(tenant: TenantId, ctx: Ctx) -> str:
    if not ctx.keys.exists(tenant):
        raise NotFound(f"tenant {tenant!r} does not exist on this bridge "
                       f"(create it with: cloud-bridge tenant create {tenant})")
    return tenant


Tenant = Annotated[str, Depends(known_tenant)]


def mutate(ctx: ApiContext, tenant: str,
           work: Callable[[Connection], tuple[T, list[Record]]]) -> tuple[T, int]:
    """Run one change and its change-log entry in one transaction; publish after.
    The bridge's errors (NotFound, Conflict, Invalid) roll it back and become the
    response in the app's one handler."""
    with write_tx(ctx.engine) as conn:
        result, records = work(conn)
        entry = change_log.append(conn, tenant, records)
    ctx.feed.publish(entry)
    return result, entry.version


def read(ctx: ApiContext, work: Callable[[Connection], T]) -> T:
    with read_tx(ctx.engine) as conn:
        return work(conn)
