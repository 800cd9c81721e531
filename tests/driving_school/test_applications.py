"""Applying through the public API, the office accepting the application into the register
of candidates, and the applicant told by e-mail (a real SMTP server) and SMS (the file
provider) through the bridge's notification outbox."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from cloud_bridge.driving_school.office_pages import today
from cloud_bridge.driving_school.schema import applications, candidates, courses
from cloud_bridge.driving_school.school_profile import save_profile
from cloud_bridge.notifications import Notifier, mailer_from_url, sms_from_url
from tests.driving_school.conftest import SCHOOL, School
from tests.smtp_server import SmtpServer, body_text

DS = "/driving-school"
APPLICANT = {"first_name": "Neža", "last_name": "Žnidaršič", "birth_date": "2009-01-15",
             "birth_place": "Kranj", "emso": "1501009505111",
             "address": "Prešernova 1, 4000 Kranj", "email": "neza@example.si",
             "phone": "+386 41 222 333", "category": "B", "consent": True}


def test_apply_accept_and_notify(school: School, smtp_server: SmtpServer,
                                 tmp_path: Path) -> None:
    sms_file = tmp_path / "sms.jsonl"
    school.notifier = Notifier(school.engine, mailer_from_url(smtp_server.url()),
                               sms_from_url(f"file://{sms_file}"))
    public, _ = school.client()
    url = f"{DS}/api/{school.tenant}/applications"
    assert public.post(url, json=APPLICANT).status_code == 404  # school data not saved
    save_profile(school.engine, school.tenant, {"name": SCHOOL, "address": "",
                                                "registration_no": ""})
    refused = {k: public.post(url, json={**APPLICANT, **bad}).status_code for k, bad in (
        ("consent", {"consent": False}), ("category", {"category": "X"}),
        ("emso", {"emso": "12"}), ("extra", {"card_uid": "1"}),
        ("email", {"email": "no-at"}))}
    assert refused == dict.fromkeys(refused, 422)
    assert public.post(f"{DS}/api/other/applications", json=APPLICANT).status_code == 404
    r = public.post(url, json=APPLICANT)
    assert r.status_code == 201 and r.json()["status"] == "pending"
    app_id = r.json()["id"]

    office, csrf = school.client("recepcija")
    page = office.get(f"{DS}/applications")
    assert f'data-application-id="{app_id}"' in page.text and "Žnidaršič Neža" in page.text
    assert office.post(f"{DS}/applications/{app_id}/accept",
                       follow_redirects=False).status_code == 403  # no CSRF token
    teacher, teacher_csrf = school.client("ucitelj")
    assert teacher.post(f"{DS}/applications/{app_id}/accept",
                        data={"csrf_token": teacher_csrf},
                        follow_redirects=False).status_code == 403  # not the office
    for _twice in range(2):  # a double click registers once and notifies once
        done = office.post(f"{DS}/applications/{app_id}/accept", data={"csrf_token": csrf},
                           follow_redirects=False)
        assert done.status_code == 303
    candidate_id = int(done.headers["location"].rsplit("/", 1)[1])
    with school.engine.connect() as conn:
        person = conn.execute(select(candidates).where(
            candidates.c.id == candidate_id)).mappings().one()
        course = conn.execute(select(courses).where(
            courses.c.candidate_id == candidate_id)).mappings().one()
        row = conn.execute(select(applications).where(
            applications.c.id == app_id)).mappings().one()
    assert (person["tenant"], person["last_name"], person["emso"]) == (
        school.tenant, "Žnidaršič", "1501009505111")
    year = today()[:4]  # the fixture's candidates are 2026/001 and 2026/002
    assert person["register_no"] == (f"{year}/003" if year == "2026" else f"{year}/001")
    assert course["category"] == "B" and course["started_on"] == today()
    assert row["status"] == "accepted" and row["decided_by"] == school.users["recepcija"]
    assert row["consent_version"] and row["consent_ms"] > 0

    assert school.notifier.deliver_due() == 2
    mail = smtp_server.wait_for(1)[0]
    assert mail["To"] == "neza@example.si"
    assert person["register_no"] in body_text(mail) and SCHOOL in body_text(mail)
    sms = [json.loads(line) for line in sms_file.read_text(encoding="utf-8").splitlines()]
    assert [s["to"] for s in sms] == ["+386 41 222 333"]
    assert "kategorijo B" in sms[0]["text"]  # Slovenian by default
    assert school.notifier.deliver_due() == 0
