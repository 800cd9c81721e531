"""``/members``: the people of a tenant."""

# no "from __future__ import annotations": FastAPI resolves the route signatures

from typing import Annotated, Any

from fastapi import APIRouter, Query

from cloud_bridge import membership_ops
from cloud_bridge.api.deps import Ctx, EntityId, Limit, Tenant
from cloud_bridge.api.entities import Entity, Row
from cloud_bridge.api_models import ID_PATTERN, MemberIn, MemberOut, MemberPatch
from cloud_bridge.db_schema import members


def member_out(row: Row, version: int | None = None) -> MemberOut:
    return MemberOut(id=row["id"], first_name=row["first_name"], last_name=row["last_name"],
                     email=row["email"], phone=row["phone"],
                     waiver_signed_on=row["waiver_signed_on"], blocked=row["blocked"],
                     has_pin=row["pin_hash"] is not None,
                     language=row.get("language") or "sl", version=version)


MEMBERS = Entity(members, "member", member_out, removed="erased")
router = APIRouter()


@router.get("/members")
def list_members(tenant: Tenant, ctx: Ctx, limit: Limit = 100,
                 after: Annotated[str | None, Query(pattern=ID_PATTERN)] = None
                 ) -> list[MemberOut]:
    return MEMBERS.listing(ctx, tenant, limit, *([members.c.id > after] if after else []))


@router.post("/members", status_code=201)
def create_member(tenant: Tenant, body: MemberIn, ctx: Ctx) -> MemberOut:
    return MEMBERS.create(ctx, tenant,
                          lambda c: membership_ops.create_member(c, tenant, body))


@router.get("/members/{member_id}")
def get_member(tenant: Tenant, member_id: EntityId, ctx: Ctx) -> MemberOut:
    return MEMBERS.get(ctx, tenant, member_id)


@router.patch("/members/{member_id}")
def update_member(tenant: Tenant, member_id: EntityId, body: MemberPatch,
                  ctx: Ctx) -> MemberOut:
    return MEMBERS.update(ctx, tenant, member_id, lambda c: membership_ops.update_member(
        c, tenant, member_id, body))


@router.delete("/members/{member_id}")
def erase_member(tenant: Tenant, member_id: EntityId, ctx: Ctx) -> dict[str, Any]:
    return MEMBERS.remove(ctx, tenant, member_id, lambda c: membership_ops.erase_member(
        c, tenant, member_id))
