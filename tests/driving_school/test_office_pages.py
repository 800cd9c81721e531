"""The office pages: sign-in redirect, managing candidates, instructors, vehicles and
courses with CSRF-protected forms, the logs per candidate and per instructor and day,
CSV export and the printable record card."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from cloud_bridge.driving_school.schema import candidates, courses, instructors, vehicles
from tests.driving_school.conftest import School
from tests.driving_school.lesson_payloads import edit, lesson

DS = "/driving-school"


def test_pages_need_a_session_and_forms_need_the_csrf_token(school: School) -> None:
    anonymous, _ = school.client()
    r = anonymous.get(f"{DS}/candidates", headers={"accept": "text/html"},
                      follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"{DS}/login?next=/driving-school/candidates"
    form = anonymous.get(f"{DS}/login")
    token = form.cookies["es_ds_login_csrf"]
    assert f'value="{token}"' in form.text
    creds = {"username": school.users["admin"], "password": "admin password 1"}
    forged = anonymous.post(f"{DS}/login", data={**creds, "login_csrf": "x" * 32},
                            follow_redirects=False)
    assert forged.status_code == 403  # a login form posted from another site
    token = forged.cookies["es_ds_login_csrf"]  # every rendered form has a new token
    login = anonymous.post(f"{DS}/login", data={**creds, "login_csrf": token,
                                                "next": "//evil.example/"},
                           follow_redirects=False)
    assert login.status_code == 303 and login.headers["location"] == f"{DS}/"  # no open redirect
    token = anonymous.get(f"{DS}/login").cookies["es_ds_login_csrf"]
    wrong = anonymous.post(f"{DS}/login", data={**creds, "password": "nope",
                                                "login_csrf": token})
    assert wrong.status_code == 401 and "Napačno uporabniško ime ali geslo" in wrong.text
    as_text = anonymous.post("/driving-school/app/api/login", content=b'{"username": "a"}',
                             headers={"content-type": "text/plain"})
    assert as_text.status_code == 415
    admin, _csrf = school.client("admin")
    no_token = admin.post(f"{DS}/vehicles", data={"registration": "LJ AB-123"})
    assert no_token.status_code == 403
    teacher, tcsrf = school.client("ucitelj")  # instructors see logs but manage nothing
    assert teacher.post(f"{DS}/vehicles", data={"csrf_token": tcsrf, "registration": "LJ X-1"}
                        ).status_code == 403


def test_managing_the_school(school: School) -> None:
    admin, csrf = school.client("admin")
    ok = admin.post(f"{DS}/vehicles", data={"csrf_token": csrf, "registration": "ce šk-77",
                                           "make_model": "Renault Clio", "category": "B"},
                    follow_redirects=False)
    assert ok.status_code == 303
    bad = admin.post(f"{DS}/vehicles", data={"csrf_token": csrf, "registration": "!",
                                            "make_model": "Fiat Punto"},
                     follow_redirects=False)
    assert bad.status_code == 422 and 'id="e-registration"' in bad.text
    assert 'value="Fiat Punto"' in bad.text  # what was typed stays
    r = admin.post(f"{DS}/instructors", data={
        "csrf_token": csrf, "name": "Špela Žnidar", "username": f"spela@{school.tenant}.si",
        "password": "spela password 1", "licence_no": "UV-9"}, follow_redirects=False)
    assert r.status_code == 303 and "error" not in r.headers["location"]
    with school.engine.connect() as conn:
        new_teacher = conn.execute(select(instructors.c.id).where(
            instructors.c.tenant == school.tenant, instructors.c.name == "Špela Žnidar")
        ).scalar_one()
    # the new instructor signs in with the role "instructor"
    _cookie, staff = school.auth.login(f"spela@{school.tenant}.si", "spela password 1", "t")
    assert staff.role == "instructor" and staff.tenant == school.tenant

    r = admin.post(f"{DS}/candidates", data={
        "csrf_token": csrf, "register_no": "2026/050", "first_name": "Urška",
        "last_name": "Črnigoj", "birth_date": "6. 6. 2008", "instructor_id": str(new_teacher)},
        follow_redirects=False)
    assert r.status_code == 303
    new_id = int(r.headers["location"].rsplit("/", 1)[1])
    dup = admin.post(f"{DS}/candidates", data={
        "csrf_token": csrf, "register_no": "2026/050", "first_name": "X", "last_name": "Y",
        "birth_date": "2008-06-06"}, follow_redirects=False)
    assert dup.status_code == 422
    assert "Ta evidenčna številka je že uporabljena." in dup.text and 'value="Y"' in dup.text
    r = admin.post(f"{DS}/courses", data={"csrf_token": csrf, "candidate_id": str(new_id),
                                         "category": "B", "started_on": "2026-11-01"},
                   follow_redirects=False)
    assert r.status_code == 303
    with school.engine.connect() as conn:
        course_id = conn.execute(select(courses.c.id).where(
            courses.c.tenant == school.tenant, courses.c.candidate_id == new_id)).scalar_one()
    r = admin.post(f"{DS}/courses/{course_id}", data={
        "csrf_token": csrf, "category": "B", "started_on": "1. 11. 2026",
        "theory_exam_on": "20. 11. 2026", "required_lessons": "22"}, follow_redirects=False)
    assert r.status_code == 303
    r = admin.post(f"{DS}/candidates/{new_id}", data={
        "csrf_token": csrf, "register_no": "2026/050", "first_name": "Urška",
        "last_name": "Črnigoj Bizjak", "birth_date": "2008-06-06", "active": "on"},
        follow_redirects=False)
    assert r.status_code == 303
    with school.engine.connect() as conn:
        person = conn.execute(select(candidates).where(candidates.c.id == new_id)
                              ).mappings().one()
        course = conn.execute(select(courses).where(courses.c.id == course_id)).mappings().one()
        car = conn.execute(select(vehicles).where(vehicles.c.tenant == school.tenant,
                                                  vehicles.c.registration == "CE ŠK-77")).first()
    assert person["last_name"] == "Črnigoj Bizjak" and person["instructor_id"] is None
    assert course["theory_exam_on"] == "2026-11-20" and course["required_lessons"] == 22
    assert car is not None
    for path in ("/", "/candidates", "/instructors", "/vehicles", "/courses",
                 f"/courses/{course_id}", f"/candidates/{new_id}"):
        page = admin.get(DS + path)
        assert page.status_code == 200, path
    assert "Črnigoj Bizjak" in admin.get(f"{DS}/candidates").text
    assert 'value="20. 11. 2026"' in admin.get(f"{DS}/courses/{course_id}").text
    assert "Urška" in admin.get(f"{DS}/candidates/{new_id}").text


def test_logs_csv_and_printable_card(school: School) -> None:
    teacher, csrf = school.client("ucitelj")
    c, v = school.candidate_ids[0], school.vehicle_ids[0]
    edits = [edit(lesson(c, v, started_at="2026-12-01T07:00:00.000Z",
                         ended_at="2026-12-01T08:30:00.000Z", remarks="Prednost; “križišče”")),
             edit(lesson(c, v, started_at="2026-12-02T12:00:00.000Z",
                         ended_at="2026-12-02T12:45:00.000Z", lesson_count=1,
                         lesson_type="nocna", km_start=10_100, km_end=10_130)),
             edit(lesson(school.candidate_ids[1], v, started_at="2026-12-02T14:00:00.000Z",
                         ended_at="2026-12-02T14:45:00.000Z", lesson_count=1))]
    r = teacher.post("/driving-school/app/api/sync", headers={"x-csrf-token": csrf},
                     json={"device": "tablet-a", "edits": edits})
    assert [x["outcome"] for x in r.json()["results"]] == ["applied"] * 3
    office, _ = school.client("recepcija")
    page = office.get(f"{DS}/candidates/{c}")
    assert page.text.count("data-lesson-id=") == 2 and "Učne ure (skupaj ur: 3)" in page.text
    text = office.get(f"{DS}/candidates/{c}/log.csv")
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text.lstrip("\ufeff")), delimiter=";"))
    assert [(r["datum"], r["zacetek"], r["konec"], r["st_ur"], r["km"]) for r in rows] == [
        ("2026-12-01", "08:00", "09:30", "2", "42"), ("2026-12-02", "13:00", "13:45", "1", "30")]
    assert rows[0]["kandidat"] == "Šuštar Živa" and rows[0]["vozilo"] == "KR ŠV-101"
    assert rows[0]["opombe"] == "Prednost; “križišče”" and rows[1]["vrsta_ure"] == "Nočna vožnja"
    day = office.get(f"{DS}/instructors/{school.instructor_id}/log?day=2026-12-02")
    assert day.text.count("data-lesson-id=") == 2 and "Skupaj učnih ur: 2" in day.text
    typed = office.get(f"{DS}/instructors/{school.instructor_id}/log?day=2.+12.+2026")
    assert typed.text.count("data-lesson-id=") == 2 and 'value="2. 12. 2026"' in typed.text
    assert 'type="date"' not in typed.text
    day_csv = office.get(f"{DS}/instructors/{school.instructor_id}/log.csv?day=2026-12-02")
    assert len(list(csv.reader(io.StringIO(day_csv.text), delimiter=";"))) == 3
    assert office.get(f"{DS}/instructors/{school.instructor_id}/log?day=x").status_code == 422
    card = office.get(f"{DS}/candidates/{c}/card")
    for expected in ("EVIDENČNI KARTON VOŽNJE", "Šuštar Živa", "Škofja Loka", "0204008505123",
                     "20. 10. 2026", "Tomaž Žagar", "UV-1234", "3 od 20", "@media print",
                     "data:image/png;base64,"):
        assert expected in card.text, expected


def test_forms_answer_beside_the_field_in_the_readers_language(school: School) -> None:
    admin, csrf = school.client("admin")
    r = admin.post(f"{DS}/candidates", data={
        "csrf_token": csrf, "register_no": "2026/060", "first_name": "", "last_name": "Kos",
        "birth_date": "31. 2. 2008", "emso": "123", "phone": "0" * 41})
    assert r.status_code == 422
    page = r.text
    for field, text in (("first_name", "Izpolnite to polje."),
                        ("birth_date", "Ta datum ne obstaja."),
                        ("emso", "Ta oblika ni sprejeta"),
                        ("phone", "največ 40 znakov")):
        assert f'id="e-{field}"' in page, field
        error = page.split(f'id="e-{field}"', 1)[1].split("</small>", 1)[0]
        assert text in error, (field, error)
    assert "Input should" not in page and "first_name:" not in page  # no developer text
    assert 'value="31. 2. 2008"' in page and 'value="Kos"' in page  # typed values stay
    assert 'type="date"' not in page and 'maxlength="40"' in page  # limits shown
    assert "3. 12. 2026" in page.split('id="h-birth_date"', 1)[1].split("</small>", 1)[0]
    admin.cookies.set("lang", "en")
    english = admin.post(f"{DS}/candidates", data={"csrf_token": csrf, "register_no": "x",
                                                   "first_name": "Ana", "last_name": "Kos",
                                                   "birth_date": "12/03/2026"})
    assert english.status_code == 422 and '<html lang="en">' in english.text
    assert "Enter a date as day. month. year" in english.text
    admin.cookies.delete("lang")


def test_instructors_and_vehicles_are_edited_and_deactivated(school: School) -> None:
    admin, csrf = school.client("admin")
    teacher = school.instructor_id
    form = admin.get(f"{DS}/instructors/{teacher}")
    assert form.status_code == 200 and 'value="UV-1234"' in form.text
    bad = admin.post(f"{DS}/instructors/{teacher}", data={
        "csrf_token": csrf, "name": "Tomaž Žagar", "licence_no": "", "categories": "B Q"})
    assert bad.status_code == 422 and 'id="e-licence_no"' in bad.text
    assert 'id="e-categories"' in bad.text and 'value="B Q"' in bad.text
    ok = admin.post(f"{DS}/instructors/{teacher}", data={
        "csrf_token": csrf, "name": "Tomaž Žagar ml.", "licence_no": "UV-1235",
        "categories": "b, be"}, follow_redirects=False)
    assert ok.status_code == 303
    short = admin.post(f"{DS}/instructors", data={
        "csrf_token": csrf, "name": "Nov", "username": "ab", "password": "kratko",
        "licence_no": "UV-1"})
    assert short.status_code == 422
    assert all(f'id="e-{f}"' in short.text for f in ("username", "password"))
    taken = admin.post(f"{DS}/instructors", data={
        "csrf_token": csrf, "name": "Drugi", "username": school.users["ucitelj"],
        "password": "dolgo geslo 123", "licence_no": "UV-2"})
    assert taken.status_code == 422 and "uporabniško ime je že zasedeno" in taken.text
    # deactivated, the instructor's tablet is refused
    tablet, _ = school.client("ucitelj")
    assert tablet.get(f"{DS}/app/api/bootstrap").status_code == 200
    assert admin.post(f"{DS}/instructors/{teacher}/active", data={"csrf_token": csrf},
                      follow_redirects=False).status_code == 303
    refused = tablet.get(f"{DS}/app/api/bootstrap")
    assert refused.status_code == 403 and "ni aktiven učitelj" in refused.json()["detail"]
    with school.engine.connect() as conn:
        row = conn.execute(select(instructors).where(instructors.c.id == teacher)
                           ).mappings().one()
    assert (row["name"], row["licence_no"], row["categories"], row["active"]) == (
        "Tomaž Žagar ml.", "UV-1235", "B BE", False)

    car = school.vehicle_ids[0]
    assert 'value="KR ŠV-101"' in admin.get(f"{DS}/vehicles/{car}").text
    clash = admin.post(f"{DS}/vehicles/{car}", data={
        "csrf_token": csrf, "registration": "KR ŽČ-202", "category": "B"})
    assert clash.status_code == 422 and "že na seznamu" in clash.text
    moved = admin.post(f"{DS}/vehicles/{car}", data={
        "csrf_token": csrf, "registration": "kr šv-111", "make_model": "Škoda Scala",
        "category": "B"}, follow_redirects=False)
    assert moved.status_code == 303
    assert admin.post(f"{DS}/vehicles/{car}/active", data={"csrf_token": csrf},
                      follow_redirects=False).status_code == 303
    with school.engine.connect() as conn:
        v = conn.execute(select(vehicles).where(vehicles.c.id == car)).mappings().one()
    assert (v["registration"], v["make_model"], v["active"]) == (
        "KR ŠV-111", "Škoda Scala", False)
