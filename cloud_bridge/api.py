"""The bridge's JSON API (FastAPI): members, credentials, entitlements, events, devices,
commands. Every route is scoped by the tenant in its path; every mutating call commits
its change and ONE change-log entry together, then publishes that entry signed.

Authentication is a bearer token: the operator's (``--api-token`` /
``BRIDGE_API_TOKEN``) opens every tenant, a tenant's own (``cloud-bridge tenant token``)
opens that tenant only. Staff log in to the web modules (cloud_bridge/web/) instead.
"""

# no "from __future__ import annotations": FastAPI resolves the route signatures, and the
# tenant dependency types are local to create_app

import base64
import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, Engine, insert, select

from cloud_bridge import change_log, membership_ops
from cloud_bridge.api_models import (
    ID_PATTERN,
    CommandIn,
    CommandOut,
    CredentialIn,
    CredentialOut,
    CredentialPatch,
    EntitlementIn,
    EntitlementOut,
    EntitlementPatch,
    MemberIn,
    MemberOut,
    MemberPatch,
    PruneIn,
)
from cloud_bridge.attendance.api import mount_attendance
from cloud_bridge.change_feed import ChangeFeed, Publisher
from cloud_bridge.db_schema import (
    commands,
    credentials,
    device_cursor,
    devices,
    entitlements,
    events,
    members,
    read_tx,
    write_tx,
)
from cloud_bridge.device_reports import command_outcome
from cloud_bridge.membership_ops import Conflict, Invalid, NotFound, Record
from cloud_bridge.nul_guard import RefuseNulText
from cloud_bridge.param_bounds import SeqAfterQuery, SeqPath
from cloud_bridge.tenant_keys import TenantKeyStore
from contracts.command_expiry import CommandLifetimes, command_payload
from contracts.credential_hash import hash_ref
from contracts.messages import OpenArgs
from contracts.topics import DeviceTopics

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


TenantId = Annotated[str, Path(pattern=ID_PATTERN, description="tenant id")]
EntityId = Annotated[str, Path(pattern=ID_PATTERN)]


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(title="edge-suite cloud bridge", version="1")
    app.add_middleware(RefuseNulText)  # PostgreSQL cannot store NUL in text: 422, not 500

    def authorise(request: Request, tenant: str) -> None:
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
        raise HTTPException(401, "missing or wrong API token (Authorization: Bearer …)",
                            headers={"WWW-Authenticate": "Bearer"})

    def known_tenant(tenant: TenantId) -> str:
        if not ctx.keys.exists(tenant):
            raise HTTPException(404, f"tenant {tenant!r} does not exist on this bridge "
                                f"(create it with: cloud-bridge tenant create {tenant})")
        return tenant

    Tenant = Annotated[str, Depends(known_tenant)]
    router = APIRouter(prefix="/api/v1/tenants/{tenant}", dependencies=[Depends(authorise)])

    def mutate(tenant: str, work: Callable[[Connection], tuple[T, list[Record]]]
               ) -> tuple[T, int]:
        """Run one change and its change-log entry in one transaction; publish after."""
        try:
            with write_tx(ctx.engine) as conn:
                result, records = work(conn)
                entry = change_log.append(conn, tenant, records)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except Conflict as exc:
            raise HTTPException(409, str(exc)) from None
        except Invalid as exc:
            raise HTTPException(422, str(exc)) from None
        ctx.feed.publish(entry)
        return result, entry.version

    def read(work: Callable[[Connection], T]) -> T:
        try:
            with read_tx(ctx.engine) as conn:
                return work(conn)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None

    # -- tenant ------------------------------------------------------------------

    @router.get("")
    def tenant_info(tenant: Tenant) -> dict[str, Any]:
        state = read(lambda c: change_log.state(c, tenant))
        return {"tenant": tenant, "version": state.version, "log_floor": state.log_floor,
                "public_key": "base64:" + base64.b64encode(
                    ctx.keys.get(tenant).public_key_raw).decode()}

    @router.post("/change-log/prune")
    def prune(tenant: Tenant, body: PruneIn) -> dict[str, Any]:
        with write_tx(ctx.engine) as conn:
            removed = change_log.prune(conn, tenant, body.keep)
            state = change_log.state(conn, tenant)
        return {"removed": removed, "version": state.version, "log_floor": state.log_floor}

    # -- members -----------------------------------------------------------------

    def member_out(row: Any, version: int | None = None) -> MemberOut:
        return MemberOut(id=row["id"], first_name=row["first_name"], last_name=row["last_name"],
                         email=row["email"], phone=row["phone"],
                         waiver_signed_on=row["waiver_signed_on"], blocked=row["blocked"],
                         has_pin=row["pin_hash"] is not None, version=version)

    @router.get("/members")
    def list_members(tenant: Tenant, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                     after: Annotated[str | None, Query(pattern=ID_PATTERN)] = None
                     ) -> list[MemberOut]:
        stmt = select(members).where(members.c.tenant == tenant)
        if after:
            stmt = stmt.where(members.c.id > after)
        rows = read(lambda c: c.execute(stmt.order_by(members.c.id).limit(limit))
                    .mappings().all())
        return [member_out(r) for r in rows]

    @router.post("/members", status_code=201)
    def create_member(tenant: Tenant, body: MemberIn) -> MemberOut:
        member_id, version = mutate(tenant, lambda c: membership_ops.create_member(c, tenant,
                                                                                   body))
        return member_out(read(lambda c: membership_ops.get_member(c, tenant, member_id)),
                          version)

    @router.get("/members/{member_id}")
    def get_member(tenant: Tenant, member_id: EntityId) -> MemberOut:
        return member_out(read(lambda c: membership_ops.get_member(c, tenant, member_id)))

    @router.patch("/members/{member_id}")
    def update_member(tenant: Tenant, member_id: EntityId, body: MemberPatch) -> MemberOut:
        _, version = mutate(tenant, lambda c: (None, membership_ops.update_member(
            c, tenant, member_id, body)))
        return member_out(read(lambda c: membership_ops.get_member(c, tenant, member_id)),
                          version)

    @router.delete("/members/{member_id}")
    def erase_member(tenant: Tenant, member_id: EntityId) -> dict[str, Any]:
        _, version = mutate(tenant, lambda c: (None, membership_ops.erase_member(
            c, tenant, member_id)))
        return {"erased": member_id, "version": version}

    # -- credentials ---------------------------------------------------------------

    def credential_out(row: Any, version: int | None = None) -> CredentialOut:
        return CredentialOut(id=row["id"], member_id=row["member_id"], kind=row["kind"],
                             hash_ref=hash_ref(row["hash"]) if row["hash"] else None,
                             signed_qr_only=row["hash"] is None, blocked=row["blocked"],
                             version=version)

    def one_credential(c: Connection, tenant: str, cred_id: str) -> Any:
        row = c.execute(select(credentials).where(credentials.c.tenant == tenant,
                                                  credentials.c.id == cred_id)).mappings().first()
        if row is None:
            raise NotFound(f"credential {cred_id!r} does not exist in tenant {tenant!r}")
        return row

    @router.get("/credentials")
    def list_credentials(tenant: Tenant,
                         member_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
                         limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[CredentialOut]:
        stmt = select(credentials).where(credentials.c.tenant == tenant)
        if member_id:
            stmt = stmt.where(credentials.c.member_id == member_id)
        rows = read(lambda c: c.execute(stmt.order_by(credentials.c.id).limit(limit))
                    .mappings().all())
        return [credential_out(r) for r in rows]

    @router.post("/credentials", status_code=201)
    def issue_credential(tenant: Tenant, body: CredentialIn) -> CredentialOut:
        hmac_key = ctx.keys.get(tenant).hmac_key
        cred_id, version = mutate(tenant, lambda c: membership_ops.issue_credential(
            c, tenant, hmac_key, body))
        return credential_out(read(lambda c: one_credential(c, tenant, cred_id)), version)

    @router.get("/credentials/{cred_id}")
    def get_credential(tenant: Tenant, cred_id: EntityId) -> CredentialOut:
        return credential_out(read(lambda c: one_credential(c, tenant, cred_id)))

    @router.patch("/credentials/{cred_id}")
    def block_credential(tenant: Tenant, cred_id: EntityId,
                         body: CredentialPatch) -> CredentialOut:
        _, version = mutate(tenant, lambda c: (None, membership_ops.block_credential(
            c, tenant, cred_id, body.blocked)))
        return credential_out(read(lambda c: one_credential(c, tenant, cred_id)), version)

    @router.delete("/credentials/{cred_id}")
    def revoke_credential(tenant: Tenant, cred_id: EntityId) -> dict[str, Any]:
        _, version = mutate(tenant, lambda c: (None, membership_ops.revoke_credential(
            c, tenant, cred_id)))
        return {"revoked": cred_id, "version": version}

    # -- entitlements ----------------------------------------------------------------

    def entitlement_out(row: Any, version: int | None = None) -> EntitlementOut:
        return EntitlementOut(**{k: row[k] for k in EntitlementOut.model_fields
                                 if k not in ("version", "windows", "used_by_device")},
                              windows=row["windows"] or [],
                              used_by_device=row["used_by_device"] or {}, version=version)

    def one_entitlement(c: Connection, tenant: str, ent_id: str) -> Any:
        row = c.execute(select(entitlements).where(
            entitlements.c.tenant == tenant, entitlements.c.id == ent_id)).mappings().first()
        if row is None:
            raise NotFound(f"entitlement {ent_id!r} does not exist in tenant {tenant!r}")
        return row

    @router.get("/entitlements")
    def list_entitlements(tenant: Tenant,
                          member_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 100
                          ) -> list[EntitlementOut]:
        stmt = select(entitlements).where(entitlements.c.tenant == tenant)
        if member_id:
            stmt = stmt.where(entitlements.c.member_id == member_id)
        rows = read(lambda c: c.execute(stmt.order_by(entitlements.c.id).limit(limit))
                    .mappings().all())
        return [entitlement_out(r) for r in rows]

    @router.post("/entitlements", status_code=201)
    def create_entitlement(tenant: Tenant, body: EntitlementIn) -> EntitlementOut:
        ent_id, version = mutate(tenant, lambda c: membership_ops.create_entitlement(
            c, tenant, body))
        return entitlement_out(read(lambda c: one_entitlement(c, tenant, ent_id)), version)

    @router.get("/entitlements/{ent_id}")
    def get_entitlement(tenant: Tenant, ent_id: EntityId) -> EntitlementOut:
        return entitlement_out(read(lambda c: one_entitlement(c, tenant, ent_id)))

    @router.patch("/entitlements/{ent_id}")
    def update_entitlement(tenant: Tenant, ent_id: EntityId,
                           body: EntitlementPatch) -> EntitlementOut:
        _, version = mutate(tenant, lambda c: (None, membership_ops.update_entitlement(
            c, tenant, ent_id, body)))
        return entitlement_out(read(lambda c: one_entitlement(c, tenant, ent_id)), version)

    @router.delete("/entitlements/{ent_id}")
    def delete_entitlement(tenant: Tenant, ent_id: EntityId) -> dict[str, Any]:
        _, version = mutate(tenant, lambda c: (None, membership_ops.delete_entitlement(
            c, tenant, ent_id)))
        return {"deleted": ent_id, "version": version}

    # -- events ----------------------------------------------------------------------

    def event_out(r: Any) -> dict[str, Any]:
        return {"id": r["id"], "tenant": r["tenant"], "device": r["device"], "seq": r["seq"],
                "ts": r["ts"], "type": r["type"], "data": r["data"],
                "received_at": r["received_at"]}

    @router.get("/events")
    def list_events(
        tenant: Tenant,
        device: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
        type: Annotated[str | None, Query(max_length=64)] = None,
        since_seq: SeqAfterQuery = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        stmt = select(events).where(events.c.tenant == tenant, events.c.seq > since_seq)
        if device:
            stmt = stmt.where(events.c.device == device)
        if type:
            stmt = stmt.where(events.c.type == type)
        stmt = stmt.order_by(events.c.device, events.c.seq).limit(limit)
        return [event_out(r) for r in read(lambda c: c.execute(stmt).mappings().all())]

    @router.get("/events/{device}/{seq}")
    def get_event(tenant: Tenant, device: EntityId, seq: SeqPath) -> dict[str, Any]:
        row = read(lambda c: c.execute(select(events).where(
            events.c.tenant == tenant, events.c.device == device, events.c.seq == seq))
            .mappings().first())
        if row is None:
            raise HTTPException(404, f"no event {seq} of device {device!r}")
        return event_out(row)

    # -- devices and commands ------------------------------------------------------------

    def device_rows(c: Connection, tenant: str, device: str | None) -> list[dict[str, Any]]:
        stmt = select(devices, device_cursor.c.acked_seq).select_from(
            devices.outerjoin(device_cursor, (device_cursor.c.tenant == devices.c.tenant)
                              & (device_cursor.c.device == devices.c.device))
        ).where(devices.c.tenant == tenant)
        if device:
            stmt = stmt.where(devices.c.device == device)
        out = []
        for r in c.execute(stmt.order_by(devices.c.device)).mappings():
            out.append({"device": r["device"], "online": r["online"],
                        "last_seen": r["last_seen"], "acked_seq": r["acked_seq"] or 0,
                        "state": r["state"]})
        return out

    @router.get("/devices")
    def list_devices(tenant: Tenant) -> list[dict[str, Any]]:
        return read(lambda c: device_rows(c, tenant, None))

    @router.get("/devices/{device}")
    def get_device(tenant: Tenant, device: EntityId) -> dict[str, Any]:
        rows = read(lambda c: device_rows(c, tenant, device))
        if not rows:
            raise HTTPException(404, f"device {device!r} has never reported to this bridge")
        return rows[0]

    @router.post("/devices/{device}/commands", status_code=202)
    def send_command(tenant: Tenant, device: EntityId, body: CommandIn) -> dict[str, Any]:
        if body.name == "open":
            try:
                args = OpenArgs.model_validate(body.args).model_dump()
            except ValueError as exc:
                raise HTTPException(422, f"open needs args {{gate, direction}}: "
                                    f"{str(exc).splitlines()[-1].strip()}") from None
        elif body.args:
            raise HTTPException(422, f"{body.name} takes no args")
        else:
            args = {}
        request_id = str(uuid.uuid4())
        now = int(time.time() * 1000)
        expires_at = ctx.command_lifetimes.expires_at_ms(body.name, now)
        with write_tx(ctx.engine) as conn:
            conn.execute(insert(commands).values(
                request_id=request_id, tenant=tenant, device=device, name=body.name,
                args=args, sent_at=now, expires_at=expires_at))
        ctx.publisher.publish(DeviceTopics(ctx.prefix, tenant, device).cmd(body.name),
                              command_payload(request_id, args, expires_at))
        return {"request_id": request_id, "expires_at": expires_at}

    @router.get("/commands/{request_id}")
    def get_command(tenant: Tenant,
                    request_id: Annotated[str, Path(max_length=64)]) -> CommandOut:
        row = read(lambda c: c.execute(select(commands).where(
            commands.c.tenant == tenant, commands.c.request_id == request_id))
            .mappings().first())
        if row is None:
            raise HTTPException(404, f"no command {request_id!r} in tenant {tenant!r}")
        return CommandOut(request_id=row["request_id"], device=row["device"], name=row["name"],
                          args=row["args"], sent_at=row["sent_at"],
                          expires_at=row["expires_at"],
                          answered=row["answered_at"] is not None, ok=row["ok"],
                          result=row["result"], error=row["error"],
                          outcome=command_outcome(dict(row), int(time.time() * 1000)))

    app.include_router(router)
    mount_attendance(app, ctx.engine, authorise, known_tenant)

    @app.get("/api/v1/health")
    def health() -> dict[str, Any]:
        return {"ok": True}

    @app.exception_handler(Invalid)
    def _invalid(_r: Request, exc: Invalid) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    return app
