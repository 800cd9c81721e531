"""The izpisni list: the office records that a candidate moves to another school; the
printable sheet carries the record card's data, the theory hours and the lessons; the
candidate leaves the active list; issuing again keeps the first record."""

from __future__ import annotations

from sqlalchemy import select

from cloud_bridge.driving_school.schema import candidates, leavings
from tests.driving_school.conftest import School
from tests.driving_school.lesson_payloads import edit, lesson

DS = "/driving-school"


def test_leaving_sheet(school: School) -> None:
    teacher, csrf_t = school.client("ucitelj")
    c, v = school.candidate_ids[0], school.vehicle_ids[0]
    r = teacher.post("/driving-school/app/api/sync", headers={"x-csrf-token": csrf_t},
                     json={"device": "tablet-a", "edits": [edit(lesson(c, v))]})
    assert r.json()["results"][0]["outcome"] == "applied"
    office, csrf = school.client("recepcija")
    assert office.get(f"{DS}/candidates/{c}/leaving-sheet").status_code == 404  # not left
    bad = office.post(f"{DS}/candidates/{c}/leave", data={"csrf_token": csrf,
                                                         "left_on": "31. 2. 2026",
                                                         "to_school": "AŠ Žaga"})
    assert bad.status_code == 422 and 'value="AŠ Žaga"' in bad.text
    for day in ("5. 12. 2026", "9. 12. 2026"):
        done = office.post(f"{DS}/candidates/{c}/leave", follow_redirects=False,
                           data={"csrf_token": csrf, "left_on": day, "to_school": "AŠ Žaga"})
        assert done.status_code == 303
    sheet = office.get(done.headers["location"])
    for expected in ("IZPISNI LIST", "Šuštar Živa", "0204008505123", "2026/001",
                     "5. 12. 2026", "AŠ Žaga", "Teoretični del: 0 od 24 šolskih ur",
                     "2 od 20", "KR ŠV-101", "@media print"):
        assert expected in sheet.text, expected
    with school.engine.connect() as conn:
        row = conn.execute(select(leavings)).mappings().one()
        active = conn.execute(select(candidates.c.active).where(
            candidates.c.id == c)).scalar_one()
    assert row["left_on"] == "2026-12-05" and row["tenant"] == school.tenant
    assert active is False
    other = school.candidate_ids[1]
    assert school.client("ucitelj")[0].post(
        f"{DS}/candidates/{other}/leave", data={"csrf_token": csrf_t,
                                                "left_on": "5. 12. 2026"}).status_code == 403
