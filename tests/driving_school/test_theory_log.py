"""The theory training log (dnevnik usposabljanja): the office adds sessions, marks who
attended (only its own candidates), the candidate's page counts the school hours against
the programme's minimum, the session page prints the list of those present."""

from __future__ import annotations

from sqlalchemy import select

from cloud_bridge.driving_school.schema import theory_attendance
from tests.driving_school.conftest import School

DS = "/driving-school"
SESSION = {"category": "B", "day": "3. 12. 2026", "start_hm": "17:00", "hours": "4",
           "topic": "Prednost na križiščih", "lecturer": "Ana Šporar",
           "lecturer_licence": "UP-77"}


def test_sessions_attendance_and_hours(school: School) -> None:
    office, csrf = school.client("recepcija")
    bad = office.post(f"{DS}/theory", data={**SESSION, "hours": "5", "start_hm": "25:00",
                                            "csrf_token": csrf})
    assert bad.status_code == 422 and 'value="Prednost na križiščih"' in bad.text
    made = [office.post(f"{DS}/theory", data={**SESSION, "csrf_token": csrf, "day": day},
                        follow_redirects=False) for day in ("3. 12. 2026", "4. 12. 2026")]
    assert [r.status_code for r in made] == [303, 303]
    first, second = (int(r.headers["location"].rsplit("/", 1)[1]) for r in made)
    a, b = school.candidate_ids
    for session_id, present in ((first, [a, b, 999_999]), (second, [a])):
        r = office.post(f"{DS}/theory/{session_id}/attendance", follow_redirects=False,
                        data={"csrf_token": csrf, **{f"c-{c}": "1" for c in present}})
        assert r.status_code == 303
    with school.engine.connect() as conn:
        stored = conn.execute(select(theory_attendance.c.session_id,
                                     theory_attendance.c.candidate_id)
                              .where(theory_attendance.c.tenant == school.tenant)).all()
    assert sorted(stored) == sorted([(first, a), (first, b), (second, a)])  # 999999 dropped
    listing = office.get(f"{DS}/theory")
    assert listing.text.count("data-session-id=") == 2 and "Dnevnik usposabljanja" in listing.text
    page = office.get(f"{DS}/theory/{first}")
    assert "Ana Šporar" in page.text and "UP-77" in page.text
    assert page.text.count("<li>") >= 2 and "Šuštar Živa (2026/001)" in page.text
    person = office.get(f"{DS}/candidates/{a}")
    assert "Teoretični del: 8 od 24 šolskih ur" in person.text
    other = office.get(f"{DS}/candidates/{b}")
    assert "Teoretični del: 4 od 24 šolskih ur" in other.text
    teacher, teacher_csrf = school.client("ucitelj")
    assert teacher.post(f"{DS}/theory/{first}/attendance",
                        data={"csrf_token": teacher_csrf}).status_code == 403
