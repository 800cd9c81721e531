"""Corrections and absences through the JSON API: new records that name what they
correct, originals untouched, timesheets on the corrected view, everything audited."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from cloud_bridge.api import ApiContext, create_app
from cloud_bridge.change_feed import ChangeFeed
from cloud_bridge.db_schema import events, read_tx
from cloud_bridge.tenant_keys import TenantKeyStore
from tests.attendance.conftest import API_TOKEN, FakePublisher, ingest
from tests.attendance.punch_plan import LJ, chain_events

KEY = Ed25519PrivateKey.generate()


def at(day: int, h: int, m: int = 0) -> datetime:
    return datetime(2026, 11, day, h, m, tzinfo=LJ).astimezone(UTC)


PUNCHES = [
    ("e1", at(3, 7), "arrival"),  # seq 1: no departure that day
    ("e2", at(3, 8), "arrival"),  # seq 2
    ("e3", at(3, 8, 30), "arrival"),  # seq 3: a double tap ...
    ("e3", at(3, 8, 31), "arrival"),  # seq 4: ... one minute later
    ("e2", at(3, 18), "departure"),  # seq 5: really left at 16:00
    ("e3", at(3, 16, 31), "departure"),  # seq 6
    ("e1", at(4, 7), "arrival"),  # seq 7
    ("e1", at(4, 15), "departure"),  # seq 8
]


@pytest.fixture
def api(engine: Engine, tenant: str, keys_dir: Path,
        published: FakePublisher) -> Iterator[TestClient]:
    # one signed head, at the end: the punches keep seq 1..8
    ingest(engine, chain_events(tenant, "clock-1", PUNCHES, KEY, head_every=100))
    keys = TenantKeyStore(keys_dir)
    ctx = ApiContext(engine, keys, ChangeFeed(keys, published, "es/v1"), published, "es/v1",
                     API_TOKEN)
    with TestClient(create_app(ctx), headers={"Authorization": f"Bearer {API_TOKEN}"},
                    base_url=f"http://t/api/v1/tenants/{tenant}/attendance/") as c:
        yield c


def day(c: TestClient, employee: str, d: int) -> dict[str, Any]:
    sheet = c.get(f"timesheets/{employee}", params={"month": "2026-11"})
    assert sheet.status_code == 200, sheet.text
    return sheet.json()["days"][d - 1]


def originals(engine: Engine, tenant: str) -> list[tuple[Any, ...]]:
    with read_tx(engine) as conn:
        return [tuple(r) for r in conn.execute(
            select(events.c.seq, events.c.ts, events.c.data).where(events.c.tenant == tenant)
            .order_by(events.c.seq))]


def test_corrections_fix_the_timesheet_and_leave_the_originals(
        api: TestClient, engine: Engine, tenant: str) -> None:
    before = originals(engine, tenant)
    assert day(api, "e1", 3)["alerts"][0].startswith("missing departure")
    assert day(api, "e2", 3)["worked_min"] == 600
    assert day(api, "e3", 3)["alerts"][0].startswith("missing departure")
    admin = {"author": "admin:maja", "reason": "employee forgot to punch, confirmed by boss"}

    added = api.post("corrections", json={**admin, "action": "add", "employee": "e1",
                                          "at": "2026-11-03T15:30:00+01:00",
                                          "punch_type": "departure"})
    assert added.status_code == 201, added.text
    amended = api.post("corrections", json={**admin, "action": "amend", "ref_device": "clock-1",
                                            "ref_seq": 5, "at": "2026-11-03T16:00:00+01:00"})
    assert amended.status_code == 201
    voided = api.post("corrections", json={**admin, "action": "void", "ref_device": "clock-1",
                                           "ref_seq": 3})
    assert voided.status_code == 201

    e1 = day(api, "e1", 3)
    assert (e1["worked_min"], e1["alerts"], e1["departure"][11:16]) == (510, [], "15:30")
    assert day(api, "e2", 3)["worked_min"] == 480
    e3 = day(api, "e3", 3)
    assert (e3["worked_min"], e3["alerts"], e3["arrival"][11:16]) == (480, [], "08:31")

    # the punches as the time clock sent them are untouched, and still verify
    assert originals(engine, tenant) == before
    assert api.put("devices/clock-1/key", json={
        "author": "admin:maja", "public_key": base64.b64encode(KEY.public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw)).decode()}).status_code == 200
    chain = api.get("chain/clock-1").json()
    assert chain["ok"] and chain["signatures_checked"] and chain["punches"] == 8

    listed = api.get("corrections", params={"employee": "e2"}).json()
    assert [(c["action"], c["ref_seq"], c["author"]) for c in listed] == [
        ("amend", 5, "admin:maja")]
    assert listed[0]["reason"] == admin["reason"]

    # a correction of a correction: the added departure moved, then withdrawn
    add_id = added.json()["id"]
    assert api.post("corrections", json={**admin, "action": "amend", "ref_correction": add_id,
                                         "at": "2026-11-03T15:00:00+01:00"}).status_code == 201
    assert day(api, "e1", 3)["worked_min"] == 480
    assert api.post("corrections", json={**admin, "action": "void",
                                         "ref_correction": add_id}).status_code == 201
    assert day(api, "e1", 3)["alerts"][0].startswith("missing departure")

    trail = api.get("audit").json()
    assert [t["action"] for t in trail][:3] == ["correction.void", "correction.amend",
                                                "device_key.set"]
    assert all(t["actor"] == "admin:maja" for t in trail)


def test_corrections_that_cannot_be_recorded(api: TestClient) -> None:
    base = {"author": "admin:maja", "reason": "because"}
    cases = [
        ({**base, "action": "void", "ref_device": "clock-1", "ref_seq": 99}, 404),
        ({**base, "action": "void", "ref_device": "clock-1", "ref_seq": 1,
          "employee": "e2"}, 422),  # that punch is e1's
        ({**base, "action": "add", "employee": "e1", "ref_device": "clock-1", "ref_seq": 1,
          "at": "2026-11-03T15:30:00+01:00", "punch_type": "departure"}, 422),
        ({**base, "action": "amend", "ref_device": "clock-1", "ref_seq": 1}, 422),
        ({**base, "action": "add", "employee": "e1", "at": "2026-11-03T15:30:00",
          "punch_type": "departure"}, 422),  # no time zone
        ({"author": "admin:maja", "reason": "", "action": "void", "ref_device": "clock-1",
          "ref_seq": 1}, 422),
        ({**base, "action": "delete", "ref_device": "clock-1", "ref_seq": 1}, 422),
    ]
    for body, status in cases:
        assert api.post("corrections", json=body).status_code == status, body
    assert api.get("corrections").json() == []


def test_absences_are_replaced_and_withdrawn_never_edited(api: TestClient) -> None:
    created = api.post("absences", json={"employee": "e1", "kind": "annual_leave",
                                         "first_day": "2026-11-09", "last_day": "2026-11-13",
                                         "author": "admin:maja", "note": "jesenski dopust"})
    assert created.status_code == 201
    old = created.json()["id"]
    sheet = api.get("timesheets/e1", params={"month": "2026-11"}).json()
    assert sheet["totals"]["absences_min"] == {"annual_leave": 40 * 60}
    replaced = api.put(f"absences/{old}", json={
        "employee": "e1", "kind": "sick_leave", "first_day": "2026-11-09",
        "last_day": "2026-11-10", "author": "admin:maja", "reason": "sick note arrived"})
    assert replaced.status_code == 200
    new = replaced.json()["id"]
    sheet = api.get("timesheets/e1", params={"month": "2026-11"}).json()
    assert sheet["totals"]["absences_min"] == {"sick_leave": 16 * 60}
    assert [a["id"] for a in api.get("absences").json()] == [new]
    history = api.get("absences", params={"include_withdrawn": True}).json()
    assert [(a["id"], a["withdrawn_reason"], a["replaces"]) for a in history] == [
        (old, "sick note arrived", None), (new, None, old)]
    assert api.request("DELETE", f"absences/{new}", json={
        "author": "admin:maja", "reason": "entered for the wrong person"}).status_code == 200
    assert api.request("DELETE", f"absences/{new}", json={
        "author": "admin:maja", "reason": "again"}).status_code == 404
    assert api.get("absences").json() == []
    assert api.post("absences", json={"employee": "e1", "kind": "holiday",
                                      "first_day": "2026-11-09", "last_day": "2026-11-09",
                                      "author": "x"}).status_code == 422
    assert api.post("absences", json={"employee": "e1", "kind": "other",
                                      "first_day": "2026-11-09", "last_day": "2026-11-08",
                                      "author": "x"}).status_code == 422
    actions = [t["action"] for t in api.get("audit").json()]
    assert actions == ["absence.withdraw", "absence.create", "absence.withdraw",
                       "absence.create"]


def test_the_printed_report_marks_corrections_and_voided_punches(
        api: TestClient) -> None:
    admin = {"author": "admin:maja"}
    assert api.post("corrections", json={**admin, "action": "amend", "ref_device": "clock-1",
                                         "ref_seq": 5, "at": "2026-11-03T16:00:00+01:00",
                                         "reason": "left at four"}).status_code == 201
    assert api.post("corrections", json={**admin, "action": "void", "ref_device": "clock-1",
                                         "ref_seq": 4, "reason": "double tap"}
                    ).status_code == 201
    html = api.get("timesheets/e2/html", params={"month": "2026-11"}).text
    assert 'data-marked="2026-11-03"' in html and "spremenjen vpis: left at four" in html
    voided = api.get("report", params={"month": "2026-11", "format": "html"}).text
    section = voided.split('data-employee="e3"')[1].split("</section>")[0]
    assert "odstranjen vpis: double tap (admin:maja)" in section  # in no shift any more
    assert 'data-marked="2026-11-03"' in section
