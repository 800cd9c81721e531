"""``/entitlements``: memberships, punch cards, day tickets and vouchers of members."""

# no "from __future__ import annotations": FastAPI resolves the route signatures

from typing import Any

from fastapi import APIRouter

from cloud_bridge import membership_ops
from cloud_bridge.api.deps import Ctx, EntityId, Limit, MemberFilter, Tenant
from cloud_bridge.api.entities import Entity, Row
from cloud_bridge.api_models import EntitlementIn, EntitlementOut, EntitlementPatch
from cloud_bridge.db_schema import entitlements


def entitlement_out(row: Row, version: int | None = None) -> EntitlementOut:
    return EntitlementOut(**{k: row[k] for k in EntitlementOut.model_fields
                             if k not in ("version", "windows", "used_by_device")},
                          windows=row["windows"] or [],
                          used_by_device=row["used_by_device"] or {}, version=version)


ENTITLEMENTS = Entity(entitlements, "entitlement", entitlement_out, removed="deleted")
router = APIRouter()


@router.get("/entitlements")
def list_entitlements(tenant: Tenant, ctx: Ctx, member_id: MemberFilter = None,
                      limit: Limit = 100) -> list[EntitlementOut]:
    return ENTITLEMENTS.listing(ctx, tenant, limit,
                             *([entitlements.c.member_id == member_id] if member_id else []))


@router.post("/entitlements", status_code=201)
def create_entitlement(tenant: Tenant, body: EntitlementIn, ctx: Ctx) -> EntitlementOut:
    return ENTITLEMENTS.create(ctx, tenant, lambda c: membership_ops.create_entitlement(
        c, tenant, body))


@router.get("/entitlements/{ent_id}")
def get_entitlement(tenant: Tenant, ent_id: EntityId, ctx: Ctx) -> EntitlementOut:
    return ENTITLEMENTS.get(ctx, tenant, ent_id)


@router.patch("/entitlements/{ent_id}")
def update_entitlement(tenant: Tenant, ent_id: EntityId, body: EntitlementPatch,
                       ctx: Ctx) -> EntitlementOut:
    return ENTITLEMENTS.update(ctx, tenant, ent_id, lambda c: membership_ops.update_entitlement(
        c, tenant, ent_id, body))


@router.delete("/entitlements/{ent_id}")
def delete_entitlement(tenant: Tenant, ent_id: EntityId, ctx: Ctx) -> dict[str, Any]:
    return ENTITLEMENTS.remove(ctx, tenant, ent_id, lambda c: membership_ops.delete_entitlement(
        c, tenant, ent_id))
