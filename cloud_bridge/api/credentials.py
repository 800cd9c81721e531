"""``/credentials``: cards, static codes and signed-QR identities of members. Clear UIDs
and codes come in only; responses carry a short reference to the keyed hash."""

# no "from __future__ import annotations": FastAPI resolves the route signatures

from typing import Any

from fastapi import APIRouter

from cloud_bridge import membership_ops
from cloud_bridge.api.deps import Ctx, EntityId, Limit, MemberFilter, Tenant
from cloud_bridge.api.entities import Entity, Row
from cloud_bridge.api_models import CredentialIn, CredentialOut, CredentialPatch
from cloud_bridge.db_schema import credentials
from contracts.credential_hash import hash_ref


def credential_out(row: Row, version: int | None = None) -> CredentialOut:
    return CredentialOut(id=row["id"], member_id=row["member_id"], kind=row["kind"],
                         hash_ref=hash_ref(row["hash"]) if row["hash"] else None,
                         signed_qr_only=row["hash"] is None, blocked=row["blocked"],
                         version=version)


CREDENTIALS = Entity(credentials, "credential", credential_out, removed="revoked")
router = APIRouter()


@router.get("/credentials")
def list_credentials(tenant: Tenant, ctx: Ctx, member_id: MemberFilter = None,
                     limit: Limit = 100) -> list[CredentialOut]:
    return CREDENTIALS.listing(ctx, tenant, limit,
                            *([credentials.c.member_id == member_id] if member_id else []))


@router.post("/credentials", status_code=201)
def issue_credential(tenant: Tenant, body: CredentialIn, ctx: Ctx) -> CredentialOut:
    hmac_key = ctx.keys.get(tenant).hmac_key
    return CREDENTIALS.create(ctx, tenant, lambda c: membership_ops.issue_credential(
        c, tenant, hmac_key, body))


@router.get("/credentials/{cred_id}")
def get_credential(tenant: Tenant, cred_id: EntityId, ctx: Ctx) -> CredentialOut:
    return CREDENTIALS.get(ctx, tenant, cred_id)


@router.patch("/credentials/{cred_id}")
def block_credential(tenant: Tenant, cred_id: EntityId, body: CredentialPatch,
                     ctx: Ctx) -> CredentialOut:
    return CREDENTIALS.update(ctx, tenant, cred_id, lambda c: membership_ops.block_credential(
        c, tenant, cred_id, body.blocked))


@router.delete("/credentials/{cred_id}")
def revoke_credential(tenant: Tenant, cred_id: EntityId, ctx: Ctx) -> dict[str, Any]:
    return CREDENTIALS.remove(ctx, tenant, cred_id, lambda c: membership_ops.revoke_credential(
        c, tenant, cred_id))
