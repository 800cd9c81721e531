"""Numbers in paths, query strings and bodies of the JSON API are bounded: a number the
database cannot hold is a clear 422, never a 500 (SQLite: OverflowError past 64 bits;
PostgreSQL: "bigint/integer out of range"). The bounds are in the OpenAPI document too."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloud_bridge.param_bounds import MAX_BIGINT, MAX_ROW_ID
from tests.bridge.test_api import base

HUGE = 99999999999999999999999  # the number from the report: past 64 bits


@pytest.fixture
def api(client: Any) -> TestClient:
    """The same app, answering 500 instead of raising, as a real server does."""
    return TestClient(client.app, raise_server_exceptions=False, headers=dict(client.headers))


def detail_names(r: Any, name: str) -> bool:
    return any(name in [str(p) for p in e["loc"]] for e in r.json()["detail"])


def test_event_seq_in_query_and_path_is_bounded(api: TestClient, tenant: str) -> None:
    b = base(tenant)
    for since in (HUGE, MAX_BIGINT + 1, -1):
        r = api.get(f"{b}/events", params={"since_seq": since})
        assert r.status_code == 422, (since, r.text)
        assert detail_names(r, "since_seq")
    assert api.get(f"{b}/events", params={"since_seq": MAX_BIGINT}).json() == []
    for seq in (HUGE, MAX_BIGINT + 1, -(2**63) - 1, 0):
        r = api.get(f"{b}/events/dev1/{seq}")
        assert r.status_code == 422, (seq, r.text)
        assert detail_names(r, "seq")
    assert api.get(f"{b}/events/dev1/{MAX_BIGINT}").status_code == 404


def test_attendance_ids_and_refs_are_bounded(api: TestClient, tenant: str) -> None:
    b = f"{base(tenant)}/attendance"
    withdraw = {"author": "Ana", "reason": "wrong day"}
    for absence_id in (HUGE, MAX_ROW_ID + 1):  # absences.id is a 32-bit integer
        r = api.request("DELETE", f"{b}/absences/{absence_id}", json=withdraw)
        assert r.status_code == 422, (absence_id, r.text)
        r = api.put(f"{b}/absences/{absence_id}", json={
            "employee": "m1", "kind": "other", "first_day": "2026-01-05",
            "last_day": "2026-01-05", "author": "Ana", "reason": "moved"})
        assert r.status_code == 422, (absence_id, r.text)
    assert api.request("DELETE", f"{b}/absences/{MAX_ROW_ID}",
                       json=withdraw).status_code == 404
    void = {"action": "void", "author": "Ana", "reason": "double punch"}
    for extra in ({"ref_correction": MAX_ROW_ID + 1}, {"ref_correction": HUGE},
                  {"ref_device": "dev1", "ref_seq": HUGE},
                  {"ref_device": "dev1", "ref_seq": MAX_BIGINT + 1}):
        r = api.post(f"{b}/corrections", json={**void, **extra})
        assert r.status_code == 422, (extra, r.text)
    r = api.post(f"{b}/corrections", json={**void, "ref_device": "dev1",
                                           "ref_seq": MAX_BIGINT})
    assert r.status_code in (404, 422) and r.status_code != 500


def test_prune_keep_is_bounded(api: TestClient, tenant: str) -> None:
    r = api.post(f"{base(tenant)}/change-log/prune", json={"keep": HUGE})
    assert r.status_code == 422 and detail_names(r, "keep")


def test_every_integer_parameter_has_bounds_in_the_openapi_document(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    unbounded = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for p in op.get("parameters", []):
                schemas = [p["schema"], *p["schema"].get("anyOf", [])]
                for s in schemas:
                    if s.get("type") in ("integer", "number") and (
                            "maximum" not in s or "minimum" not in s):
                        unbounded.append(f"{method.upper()} {path} {p['name']}")
    assert not unbounded, unbounded


def test_text_with_a_nul_character_is_refused_not_a_500(api: TestClient, tenant: str) -> None:
    """PostgreSQL cannot store NUL in text; SQLite would keep it silently. Both: 422."""
    b = base(tenant)
    member = {"id": "m1", "first_name": "Ana"}
    for r in (
        api.post(f"{b}/members", json={**member, "first_name": "A\u0000na"}),
        api.get(f"{b}/events", params={"type": "a\x00b"}),
        api.get(f"{b}/commands/a%00b"),
        api.post(f"{b}/attendance/absences", json={
            "employee": "m1", "kind": "other", "first_day": "2026-01-05",
            "last_day": "2026-01-05", "author": "Ana", "note": "x\u0000"}),
        api.post(f"{b}/attendance/corrections", json={
            "action": "add", "author": "Ana", "reason": "abc\u0000", "employee": "m1",
            "at": "2026-01-05T08:00:00+01:00", "punch_type": "arrival"}),
    ):
        assert r.status_code == 422 and "NUL" in r.json()["detail"], r.text
    # an escaped backslash before "u0000" is plain text, not a NUL
    r = api.post(f"{b}/members", json={**member, "last_name": "back\\u0000slash"})
    assert r.status_code == 201, r.text
    assert api.get(f"{b}/members/m1").json()["last_name"] == "back\\u0000slash"
