"""The driving school's routes are module-level and shared by every app that mounts
them; what each mount was given (school name, device link) stays that mount's own."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloud_bridge.driving_school import driving_school_router
from cloud_bridge.web.auth import COOKIE
from tests.driving_school.conftest import PASSWORDS, FakePublisher, School

DS = "/driving-school"


def test_two_mounts_in_one_process_keep_their_own_settings(school: School) -> None:
    first, second = FastAPI(), FastAPI()
    first.include_router(driving_school_router(school.engine, school.auth,
                                               publisher=FakePublisher(),
                                               school_name="Avtošola Prva"))
    second.include_router(driving_school_router(school.engine, school.auth,
                                                school_name="Avtošola Druga",
                                                create_schema=False))
    cookie, staff = school.auth.login(school.users["admin"], PASSWORDS["admin"], "t")
    candidate = school.candidate_ids[0]
    seen = {}
    for name, app in (("first", first), ("second", second)):
        client = TestClient(app, cookies={COOKIE: cookie})
        card = client.get(f"{DS}/candidates/{candidate}/card")
        assert card.status_code == 200, card.text
        page = client.get(f"{DS}/candidates/{candidate}")
        printed = client.post(f"{DS}/candidates/{candidate}/print-card",
                              data={"csrf_token": staff.csrf, "device": "office-1"},
                              follow_redirects=False)
        seen[name] = ("Avtošola Prva" in card.text, "Avtošola Druga" in card.text,
                      "print-card" in page.text, printed.status_code)
    assert seen["first"] == (True, False, True, 303)
    assert seen["second"] == (False, True, False, 503)  # no device link on this mount
