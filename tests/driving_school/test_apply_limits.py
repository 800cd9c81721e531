"""Limits on new applications (``apply_limits``) on SQLite and PostgreSQL, through the
public JSON API and the public form alike: per client address and school, per school from
all addresses, the sliding window on an injected clock, the form's message with what was
typed kept, and no address in clear in the database."""

from __future__ import annotations

import logging
import re
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cloud_bridge.driving_school import driving_school_router
from cloud_bridge.driving_school.apply_limits import ApplyLimits
from cloud_bridge.driving_school.schema import applications, apply_counts, ds_metadata
from cloud_bridge.driving_school.school_profile import save_profile
from tests.driving_school.conftest import SCHOOL, School, make_school, school_app
from tests.driving_school.test_applications import APPLICANT
from tests.driving_school.test_apply_form import FORM

DS = "/driving-school"
MINUTE = 60_000
ALICE, BOB = "203.0.113.77", "198.51.100.23"


class Clock:
    def __init__(self) -> None:
        self.ms = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.ms


def limits(clock: Clock, *, per_client: int = 5, per_school: int = 200) -> ApplyLimits:
    return ApplyLimits.for_server_key(b"k" * 32, per_client=per_client,
                                      per_school=per_school, clock_ms=clock)


def visitor(school: School, limit: ApplyLimits, address: str) -> TestClient:
    app = school_app(driving_school_router(school.engine, school.auth, school_name=SCHOOL,
                                           apply_limits=limit))
    return TestClient(app, client=(address, 50000))


def open_school(school: School) -> School:
    save_profile(school.engine, school.tenant, {"name": SCHOOL, "address": "",
                                                "registration_no": ""})
    return school


def stored(school: School) -> int:
    with school.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(applications).where(
            applications.c.tenant == school.tenant)).scalar_one())


def api(school: School) -> str:
    return f"{DS}/api/{school.tenant}/applications"


def test_the_sixth_application_from_one_client_is_refused(school: School) -> None:
    open_school(school)
    clock = Clock()
    limit = limits(clock)
    alice, bob = visitor(school, limit, ALICE), visitor(school, limit, BOB)
    for i in range(5):
        clock.ms += MINUTE
        assert alice.post(api(school), json=APPLICANT).status_code == 201, i
    refused = alice.post(api(school), json=APPLICANT)
    assert refused.status_code == 429
    # the first one (4 minutes ago) leaves the hour's window in 56 minutes
    assert refused.headers["retry-after"] == str(56 * 60)
    assert refused.json() == {"detail": "too many applications; try again in 56 min"}
    assert bob.post(api(school), json=APPLICANT).status_code == 201  # another client
    # invalid posts are answered 422 as before, and count nothing
    assert bob.post(api(school), json={**APPLICANT, "consent": False}).status_code == 422
    assert stored(school) == 6
    # the same address applies to another school: a limit of its own there
    other = open_school(make_school(school.engine))
    assert alice.post(api(other), json=APPLICANT).status_code == 201


def test_the_per_school_cap_holds_for_many_addresses(school: School) -> None:
    open_school(school)
    clock = Clock()
    limit = limits(clock, per_school=3)
    for n in range(3):
        client = visitor(school, limit, f"192.0.2.{n + 1}")
        assert client.post(api(school), json=APPLICANT).status_code == 201
    clock.ms += 10 * MINUTE
    late = visitor(school, limit, "192.0.2.99").post(api(school), json=APPLICANT)
    assert late.status_code == 429 and late.headers["retry-after"] == str(50 * 60)
    assert stored(school) == 3
    other = open_school(make_school(school.engine))  # another school still takes them
    assert visitor(school, limit, "192.0.2.99").post(api(other), json=APPLICANT
                                                     ).status_code == 201


def test_the_window_slides_and_old_counts_are_pruned(school: School) -> None:
    open_school(school)
    clock = Clock()
    start = clock.ms
    alice = visitor(school, limits(clock), ALICE)
    assert alice.post(api(school), json=APPLICANT).status_code == 201
    clock.ms += 20 * MINUTE
    for _ in range(4):
        assert alice.post(api(school), json=APPLICANT).status_code == 201
    clock.ms = start + 59 * MINUTE
    assert alice.post(api(school), json=APPLICANT).headers["retry-after"] == "60"
    clock.ms = start + 60 * MINUTE + 1  # the first one has left the window
    assert alice.post(api(school), json=APPLICANT).status_code == 201
    again = alice.post(api(school), json=APPLICANT)  # the next leaves at +80 min
    assert again.status_code == 429
    assert again.headers["retry-after"] == str(20 * 60)
    clock.ms = start + 200 * MINUTE
    assert alice.post(api(school), json=APPLICANT).status_code == 201
    with school.engine.connect() as conn:
        kept = conn.execute(select(apply_counts.c.at_ms).where(
            apply_counts.c.tenant == school.tenant)).scalars().all()
    assert kept == [start + 200 * MINUTE]  # the six older counts were deleted
    assert stored(school) == 7


def form_token(client: TestClient, school: School) -> str:
    page = client.get(f"{DS}/apply/{school.tenant}")
    assert page.status_code == 200
    found = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_the_form_says_why_and_keeps_what_was_typed(school: School) -> None:
    open_school(school)
    clock = Clock()
    alice = visitor(school, limits(clock, per_client=2), ALICE)
    url = f"{DS}/apply/{school.tenant}"
    # the API and the form share the limit: one through each, then the form refuses
    assert alice.post(api(school), json=APPLICANT).status_code == 201
    done = alice.post(url, data={**FORM, "form_token": form_token(alice, school)})
    assert done.status_code == 200 and 'id="apply-done"' in done.text
    clock.ms += 30 * MINUTE + 1
    token = form_token(alice, school)
    refused = alice.post(url, data={**FORM, "form_token": token})
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == str(30 * 60)
    alert = re.search(r'<p class="error" role="alert">([^<]*)</p>', refused.text)
    assert alert is not None
    assert alert.group(1) == ("Preveč prijav iz tega omrežja ali za to avtošolo. "
                              "Poskusite znova čez 30 minut.")
    assert alert.start() < refused.text.index('name="category"')  # above the fields
    for kept in ('value="Žnidaršič"', 'value="neza@example.si"', 'value="1501009505111"',
                 'value="+386 41 222 333"', 'value="Prešernova 1, 4000 Kranj"'):
        assert kept in refused.text, kept
    assert re.search(r'<option value="B"[^>]*selected', refused.text)
    assert "default-src 'none'" in refused.headers["content-security-policy"]
    assert stored(school) == 2
    # the same token still works once the window has moved on
    clock.ms += MINUTE
    assert "29 minut." in alice.post(url, data={**FORM, "form_token": token}).text
    # in English (the switch opens the form again, with a token of its own)
    switched = alice.get(f"/lang/en?next={url}")
    found = re.search(r'name="form_token" value="([^"]+)"', switched.text)
    assert found is not None
    token = found.group(1)
    english = alice.post(url, data={**FORM, "form_token": token})
    assert english.status_code == 429 and (
        "Too many applications from this network or to this school. "
        "Please try again in 29 minutes.") in english.text
    clock.ms += 29 * MINUTE
    assert alice.post(url, data={**FORM, "form_token": token}).status_code == 200
    assert stored(school) == 3


def test_no_address_is_stored_or_logged_in_clear(school: School,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    open_school(school)
    clock = Clock()
    limit = limits(clock, per_client=1)
    alice = visitor(school, limit, ALICE)
    with caplog.at_level(logging.DEBUG):
        assert alice.post(api(school), json=APPLICANT).status_code == 201
        assert alice.post(api(school), json=APPLICANT).status_code == 429
        alice.post(f"{DS}/apply/{school.tenant}",
                   data={**FORM, "form_token": form_token(alice, school)})
    assert ALICE not in caplog.text
    dump = []
    with school.engine.connect() as conn:
        for table in ds_metadata.sorted_tables:
            dump += [str(tuple(row)) for row in conn.execute(select(table))]
        clients = conn.execute(select(apply_counts.c.client).where(
            apply_counts.c.tenant == school.tenant)).scalars().all()
    assert dump and not [row for row in dump if ALICE in row]
    assert clients == [limit.client_id(school.tenant, ALICE)]
    assert re.fullmatch(r"[0-9a-f]{64}", clients[0])
    # keyed: another server key or another school gives another, unlinkable value
    assert ApplyLimits.for_server_key(b"j" * 32).client_id(school.tenant, ALICE) != clients[0]
    assert limit.client_id("another", ALICE) != clients[0]
    # and every process of one bridge (the same member-link key) counts alike
    assert ApplyLimits.for_server_key(b"k" * 32).client_id(school.tenant, ALICE) == clients[0]
