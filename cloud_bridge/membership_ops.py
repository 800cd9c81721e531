"""Changes to members, credentials and entitlements, each returning the change records
that devices must receive. They run in the caller's write transaction; the caller
appends the records to the change log (one entry per call) in the same transaction.

Card UIDs and codes are hashed here with the tenant's HMAC key and dropped: only the
keyed hash is stored. Erasure removes the person's data from the tables and from the
history of the change log.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from cloud_bridge import change_log
from cloud_bridge.api_models import (
    CredentialIn,
    EntitlementFields,
    EntitlementIn,
    EntitlementPatch,
    MemberIn,
    MemberPatch,
)
from cloud_bridge.db_schema import credentials, entitlement_uses, entitlements, members
from cloud_bridge.errors import Conflict as Conflict  # re-exported for the web pages
from cloud_bridge.errors import Invalid as Invalid
from cloud_bridge.errors import NotFound as NotFound
from cloud_bridge.records import (
    credential_record,
    delete_record,
    entitlement_record,
    member_record,
)
from contracts.credential_format import normalise_uid
from contracts.credential_hash import credential_hash
from contracts.pin_hash import hash_pin

Record = dict[str, Any]


def _now() -> int:
    return int(time.time() * 1000)


def _one(conn: Connection, table: Any, tenant: str, entity_id: str, what: str,
         lock: bool = True) -> RowMapping:
    stmt = select(table).where(table.c.tenant == tenant, table.c.id == entity_id)
    row = conn.execute(stmt.with_for_update() if lock else stmt).mappings().first()
    if row is None:
        raise NotFound(f"{what} {entity_id!r} does not exist in tenant {tenant!r}")
    return row


def get_member(conn: Connection, tenant: str, member_id: str) -> RowMapping:
    return _one(conn, members, tenant, member_id, "member", lock=False)


# -- members -----------------------------------------------------------------------

def create_member(conn: Connection, tenant: str, body: MemberIn) -> tuple[str, list[Record]]:
    member_id = body.id or f"m-{uuid.uuid4().hex[:20]}"
    values = {
        "tenant": tenant, "id": member_id, "first_name": body.first_name,
        "last_name": body.last_name, "email": body.email, "phone": body.phone,
        "waiver_signed_on": body.waiver_signed_on.isoformat() if body.waiver_signed_on else None,
        "blocked": body.blocked, "pin_hash": hash_pin(body.pin) if body.pin else None,
        "language": body.language, "created_at": _now(), "updated_at": _now(),
    }
    if conn.execute(select(members.c.id).where(members.c.tenant == tenant,
                                               members.c.id == member_id)).first():
        raise Conflict(f"member {member_id!r} already exists")
    conn.execute(insert(members).values(**values))
    return member_id, [member_record(values)]


def update_member(conn: Connection, tenant: str, member_id: str,
                  patch: MemberPatch) -> list[Record]:
    row = dict(_one(conn, members, tenant, member_id, "member"))
    changes: dict[str, Any] = {}
    for field in patch.model_fields_set:
        value = getattr(patch, field)
        if field == "pin":
            changes["pin_hash"] = hash_pin(value) if value else None
        elif field == "waiver_signed_on":
            changes[field] = value.isoformat() if value else None
            changes["waiver_version"] = None  # a day set by hand: no version known
        else:
            changes[field] = value
    changes["updated_at"] = _now()
    conn.execute(update(members).where(members.c.tenant == tenant, members.c.id == member_id)
                 .values(**changes))
    return [member_record({**row, **changes})]


def erase_member(conn: Connection, tenant: str, member_id: str) -> list[Record]:
    """Erasure: the person's rows go, and so do their records in the change log's past
    entries. Devices delete everything of the member on the delete record."""
    _one(conn, members, tenant, member_id, "member")
    ent_ids = conn.execute(select(entitlements.c.id).where(
        entitlements.c.tenant == tenant, entitlements.c.member_id == member_id)).scalars().all()
    if ent_ids:
        conn.execute(delete(entitlement_uses).where(
            entitlement_uses.c.tenant == tenant, entitlement_uses.c.entitlement.in_(ent_ids)))
    conn.execute(delete(entitlements).where(entitlements.c.tenant == tenant,
                                            entitlements.c.member_id == member_id))
    conn.execute(delete(credentials).where(credentials.c.tenant == tenant,
                                           credentials.c.member_id == member_id))
    conn.execute(delete(members).where(members.c.tenant == tenant, members.c.id == member_id))
    change_log.scrub_member(conn, tenant, member_id)
    return [delete_record("member", member_id)]


# -- credentials -------------------------------------------------------------------

def credential_hash_for(hmac_key: bytes, body: CredentialIn) -> str | None:
    if body.kind == "phone":
        assert body.public_key is not None  # CredentialIn checked it
        return credential_hash(hmac_key, "phone", body.public_key.lower())
    if body.kind == "card":
        uid = normalise_uid(body.uid or "")
        if uid is None:
            raise Invalid("uid must be 4-10 bytes of hex")
        return credential_hash(hmac_key, "uid", uid)
    if body.code is None:
        return None  # signed QR tokens only: the id is what the token names
    return credential_hash(hmac_key, "qr", body.code)


def issue_credential(conn: Connection, tenant: str, hmac_key: bytes,
                     body: CredentialIn) -> tuple[str, list[Record]]:
    _one(conn, members, tenant, body.member_id, "member")
    digest = credential_hash_for(hmac_key, body)
    cred_id = body.id or str(uuid.uuid4())
    if conn.execute(select(credentials.c.id).where(credentials.c.tenant == tenant,
                                                   credentials.c.id == cred_id)).first():
        raise Conflict(f"credential {cred_id!r} already exists")
    if digest is not None:
        holder = conn.execute(select(credentials.c.id).where(
            credentials.c.tenant == tenant, credentials.c.hash == digest)).scalar()
        if holder is not None:
            raise Conflict(f"this {body.kind} is already issued as credential {holder!r}; "
                           "revoke that one first")
    values = {"tenant": tenant, "id": cred_id, "member_id": body.member_id, "kind": body.kind,
              "hash": digest, "blocked": body.blocked, "created_at": _now()}
    try:
        with conn.begin_nested():
            conn.execute(insert(credentials).values(**values))
    except IntegrityError:
        raise Conflict("this card or code was issued concurrently; try again") from None
    return cred_id, [credential_record(values)]


def block_credential(conn: Connection, tenant: str, cred_id: str,
                     blocked: bool) -> list[Record]:
    row = dict(_one(conn, credentials, tenant, cred_id, "credential"))
    conn.execute(update(credentials).where(credentials.c.tenant == tenant,
                                           credentials.c.id == cred_id).values(blocked=blocked))
    return [credential_record({**row, "blocked": blocked})]


def revoke_credential(conn: Connection, tenant: str, cred_id: str) -> list[Record]:
    _one(conn, credentials, tenant, cred_id, "credential")
    conn.execute(delete(credentials).where(credentials.c.tenant == tenant,
                                           credentials.c.id == cred_id))
    return [delete_record("credential", cred_id)]


# -- entitlements ------------------------------------------------------------------

def _check_refs(conn: Connection, tenant: str, fields: EntitlementFields) -> None:
    _one(conn, members, tenant, fields.member_id, "member", lock=False)
    if fields.credential_id is not None:
        owner = conn.execute(select(credentials.c.member_id).where(
            credentials.c.tenant == tenant, credentials.c.id == fields.credential_id)).scalar()
        if owner is None:
            raise Invalid(f"credential {fields.credential_id!r} does not exist")
        if owner != fields.member_id:
            raise Invalid(f"credential {fields.credential_id!r} belongs to another member")


def _entitlement_values(fields: EntitlementFields) -> dict[str, Any]:
    return {
        "member_id": fields.member_id, "kind": fields.kind, "valid_from": fields.valid_from,
        "valid_to": fields.valid_to,
        "valid_on": fields.valid_on.isoformat() if fields.valid_on else None,
        "entries_total": fields.entries_total, "zones": fields.zones,
        "windows": [w.model_dump() for w in fields.windows] or None,
        "frozen_from": fields.frozen_from, "frozen_to": fields.frozen_to,
        "credential_id": fields.credential_id,
    }


def create_entitlement(conn: Connection, tenant: str,
                       body: EntitlementIn) -> tuple[str, list[Record]]:
    _check_refs(conn, tenant, body)
    ent_id = body.id or f"e-{uuid.uuid4().hex[:20]}"
    if conn.execute(select(entitlements.c.id).where(entitlements.c.tenant == tenant,
                                                    entitlements.c.id == ent_id)).first():
        raise Conflict(f"entitlement {ent_id!r} already exists")
    values = {"tenant": tenant, "id": ent_id, **_entitlement_values(body),
              "used_by_device": {}, "created_at": _now()}
    conn.execute(insert(entitlements).values(**values))
    return ent_id, [entitlement_record(values)]


def update_entitlement(conn: Connection, tenant: str, ent_id: str,
                       patch: EntitlementPatch) -> list[Record]:
    row = dict(_one(conn, entitlements, tenant, ent_id, "entitlement"))
    merged = {k: row[k] for k in EntitlementFields.model_fields}
    merged["windows"] = row["windows"] or []
    merged |= patch.model_dump(include=patch.model_fields_set, mode="json")
    if merged["windows"] is None:
        merged["windows"] = []
    try:
        fields = EntitlementFields.model_validate(merged)
    except ValueError as exc:
        raise Invalid(str(exc).splitlines()[-1].strip()) from None
    _check_refs(conn, tenant, fields)
    values = _entitlement_values(fields)
    conn.execute(update(entitlements).where(entitlements.c.tenant == tenant,
                                            entitlements.c.id == ent_id).values(**values))
    return [entitlement_record({**row, **values})]


def delete_entitlement(conn: Connection, tenant: str, ent_id: str) -> list[Record]:
    _one(conn, entitlements, tenant, ent_id, "entitlement")
    conn.execute(delete(entitlements).where(entitlements.c.tenant == tenant,
                                            entitlements.c.id == ent_id))
    return [delete_record("entitlement", ent_id)]
