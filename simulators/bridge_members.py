"""Load the synthetic membership set through the bridge's JSON API, as the office would.

Every member goes in as member + card + entitlement, so the bridge writes its signed
change log and the devices of the tenant receive it over MQTT like any real change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from simulators.member_generator import generate


class BridgeRefused(Exception):
    """The bridge answered with an error; the message says which call and why."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    created: int
    existed: int


def _entitlement(record: dict[str, Any]) -> dict[str, Any]:
    ent = {k: v for k, v in record["entitlement"].items() if k not in ("entity", "op")}
    ent.setdefault("windows", [])
    return ent


def api_calls(record: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    member_id = record["id"]
    yield "members", {"id": member_id, "first_name": record["first_name"],
                      "waiver_signed_on": record["waiver_signed_on"]}
    yield "credentials", {"id": f"{member_id}-c1", "member_id": member_id, "kind": "card",
                          "uid": record["uid"]}
    yield "entitlements", _entitlement(record)


def load_through_bridge(api: str, tenant: str, token: str, count: int, start: int = 1,
                        progress: Callable[[int], None] | None = None,
                        client: httpx.Client | None = None) -> LoadResult:
    """Create members ``start..start+count-1``; ones that already exist are skipped."""
    own = client is None
    http = client or httpx.Client(base_url=api.rstrip("/"), timeout=30.0,
                                  headers={"Authorization": f"Bearer {token}"})
    created = existed = 0
    try:
        for record in generate(count, start):
            if http.get(f"/api/v1/tenants/{tenant}/members/{record['id']}").status_code == 200:
                existed += 1
            else:
                for route, body in api_calls(record):
                    reply = http.post(f"/api/v1/tenants/{tenant}/{route}", json=body)
                    if reply.status_code >= 300:
                        raise BridgeRefused(f"POST {route} for {record['id']}: HTTP "
                                            f"{reply.status_code} {reply.text[:300]}")
                created += 1
            if progress is not None:
                progress(1)
    except httpx.HTTPError as exc:
        raise BridgeRefused(f"cannot reach the bridge API at {api}: {exc}") from None
    finally:
        if own:
            http.close()
    return LoadResult(created, existed)
