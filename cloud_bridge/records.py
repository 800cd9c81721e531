"""Database rows as the devices see them: change records and snapshot rows
(docs/protocol.md, "Change records"). Only what a device needs leaves the bridge:
first name, waiver date, blocked flag, PIN hash — never last name, e-mail or phone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import RowMapping


def member_record(row: Mapping[str, Any]) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "entity": "member", "op": "upsert", "id": row["id"], "first_name": row["first_name"],
        "waiver_signed_on": row["waiver_signed_on"], "blocked": bool(row["blocked"]),
    }
    if row["pin_hash"]:
        rec["pin_hash"] = row["pin_hash"]
    if row.get("waiver_version"):  # only when known: the day rule stays for the rest
        rec["waiver_version"] = row["waiver_version"]
    return rec


def credential_record(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"entity": "credential", "op": "upsert", "id": row["id"],
            "member_id": row["member_id"], "kind": row["kind"], "hash": row["hash"],
            "blocked": bool(row["blocked"])}


ENTITLEMENT_FIELDS = ("id", "member_id", "kind", "valid_from", "valid_to", "valid_on",
                      "entries_total", "zones", "windows", "frozen_from", "frozen_to",
                      "credential_id", "used_by_device")


def entitlement_record(row: Mapping[str, Any]) -> dict[str, Any]:
    rec: dict[str, Any] = {"entity": "entitlement", "op": "upsert"}
    for field in ENTITLEMENT_FIELDS:
        rec[field] = row[field]
    rec["windows"] = row["windows"] or []
    rec["used_by_device"] = row["used_by_device"] or {}
    return rec


def delete_record(entity: str, entity_id: str) -> dict[str, Any]:
    return {"entity": entity, "op": "delete", "id": entity_id}


# positional snapshot rows, in the order docs/protocol.md fixes

def member_row(row: RowMapping) -> list[Any]:
    out = [row["id"], row["first_name"], row["waiver_signed_on"], bool(row["blocked"])]
    if row["waiver_version"]:  # only when known, as in member_record
        out.append(row["waiver_version"])
    return out


def credential_row(row: RowMapping) -> list[Any]:
    return [row["id"], row["member_id"], row["kind"], row["hash"], bool(row["blocked"])]


def entitlement_row(row: RowMapping) -> list[Any]:
    return [row["id"], row["member_id"], row["kind"], row["valid_from"], row["valid_to"],
            row["valid_on"], row["entries_total"], row["zones"], row["windows"] or None,
            row["frozen_from"], row["frozen_to"], row["credential_id"],
            row["used_by_device"] or None]
