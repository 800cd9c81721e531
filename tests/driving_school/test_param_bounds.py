"""Ids in the driving-school pages and in the tablet's lesson edits are bounded to what
the database's integer columns hold (SQLite and PostgreSQL): 422 for a page, a
"rejected" result for a tablet edit, never a 500."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cloud_bridge.param_bounds import MAX_ROW_ID
from tests.driving_school.conftest import School
from tests.driving_school.lesson_payloads import edit, lesson

DS = "/driving-school"
HUGE = 99999999999999999999999


def test_ids_in_office_page_urls_are_bounded(school: School) -> None:
    signed_in, csrf = school.client("admin")
    office = TestClient(signed_in.app, raise_server_exceptions=False,
                        cookies=signed_in.cookies)
    for row_id in (MAX_ROW_ID + 1, HUGE):
        for path in (f"/candidates/{row_id}", f"/candidates/{row_id}/log.csv",
                     f"/candidates/{row_id}/card", f"/instructors/{row_id}/log",
                     f"/instructors/{row_id}/log.csv", f"/courses/{row_id}"):
            assert office.get(f"{DS}{path}").status_code == 422, path
        for path in (f"/candidates/{row_id}", f"/vehicles/{row_id}/active",
                     f"/courses/{row_id}", f"/candidates/{row_id}/print-card"):
            r = office.post(f"{DS}{path}", data={"csrf_token": csrf}, follow_redirects=False)
            assert r.status_code == 422, path
    assert office.get(f"{DS}/candidates/{MAX_ROW_ID}").status_code == 404
    # a form's own id field: the course's candidate
    r = office.post(f"{DS}/courses", data={"csrf_token": csrf, "candidate_id": str(HUGE),
                                           "category": "B", "started_on": "2026-10-01"},
                    follow_redirects=False)
    assert r.status_code == 422 and 'id="e-candidate_id"' in r.text, r.text
    # a page answers HTML in the reader's language, never JSON
    bad = office.get(f"{DS}/candidates/{HUGE}", headers={"accept": "text/html"})
    assert bad.headers["content-type"].startswith("text/html") and "<html" in bad.text
    gone = office.get(f"{DS}/candidates/{MAX_ROW_ID}", headers={"accept": "text/html"})
    assert gone.status_code == 404 and "Strani ni mogoče najti" in gone.text
    for path in ("/candidates/abc", "/candidates/abc/card", "/vehicles/-1",
                 f"/instructors/{school.instructor_id}/log?day=32.+13.+2026"):
        r = office.get(f"{DS}{path}", headers={"accept": "text/html"})
        assert r.status_code in (404, 422) and r.headers["content-type"].startswith(
            "text/html"), path


def test_a_tablet_edit_with_an_impossible_id_is_rejected(school: School) -> None:
    client, csrf = school.client("ucitelj")
    tablet = TestClient(client.app, raise_server_exceptions=False, cookies=client.cookies)
    edits = [edit(lesson(HUGE, school.vehicle_ids[0])),
             edit(lesson(school.candidate_ids[0], MAX_ROW_ID + 1)),
             {**edit(lesson(school.candidate_ids[0], school.vehicle_ids[0])),
              "edited_ms": HUGE},
             edit(lesson(school.candidate_ids[0], school.vehicle_ids[0]), HUGE)]
    r = tablet.post(f"{DS}/app/api/sync", json={"device": "tablet-a", "edits": edits},
                    headers={"x-csrf-token": csrf})
    assert r.status_code == 200, r.text
    assert [x["outcome"] for x in r.json()["results"]] == ["rejected"] * 4
