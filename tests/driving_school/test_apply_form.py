"""The public application form (``/driving-school/apply/{tenant}``) on SQLite and
PostgreSQL: bad input answered beside the field with what was typed kept and nothing
stored, the form token, another tenant, the strict headers, and a good application stored
exactly as one through the JSON API."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cloud_bridge.driving_school.applications import CONSENT_VERSION
from cloud_bridge.driving_school.public_apply_page import APPLY_CSRF_COOKIE
from cloud_bridge.driving_school.schema import applications
from cloud_bridge.driving_school.school_profile import save_profile
from tests.driving_school.conftest import SCHOOL, School

DS = "/driving-school"
FORM = {"category": "B", "first_name": "Neža", "last_name": "Žnidaršič",
        "birth_date": "15. 1. 2009", "birth_place": "Kranj", "emso": "1501009505111",
        "address": "Prešernova 1, 4000 Kranj", "email": "neza@example.si",
        "phone": "+386 41 222 333", "consent": "1"}


def stored(school: School) -> int:
    with school.engine.connect() as conn:
        # this school's only: the PostgreSQL database is shared by the session's tests
        return int(conn.execute(select(func.count()).select_from(applications).where(
            applications.c.tenant == school.tenant)).scalar_one())


def opened(school: School) -> tuple[TestClient, str]:
    """A visitor's client with the form open, and the form's token."""
    client, _ = school.client()
    page = client.get(f"{DS}/apply/{school.tenant}")
    assert page.status_code == 200, page.text
    token = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert token is not None
    return client, token.group(1)


def error_beside(html: str, field: str) -> str:
    found = re.search(rf'<small id="e-{field}" class="field-error">([^<]*)</small>', html)
    return found.group(1) if found else ""


def test_bad_input_is_answered_beside_the_field_and_nothing_is_stored(school: School) -> None:
    url = f"{DS}/apply/{school.tenant}"
    public, _ = school.client()
    missing = public.get(url, headers={"accept": "text/html"})
    assert missing.status_code == 404  # the school has not saved its data yet
    assert missing.headers["content-type"].startswith("text/html")  # a page for a person
    save_profile(school.engine, school.tenant, {"name": SCHOOL, "address": "",
                                                "registration_no": ""})
    client, token = opened(school)
    page = client.get(url)
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp and "<script" not in page.text
    assert 'lang="sl"' in page.text and "Prijava na usposabljanje" in page.text
    assert "SameSite=strict" in page.headers["set-cookie"]
    token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    cases = (("consent", {"consent": ""}, "privolitvijo"),
             ("category", {"category": "X"}, "ponujenih"),
             ("category", {"category": ""}, "ponujenih"),
             ("first_name", {"first_name": "Ž" * 81}, "največ 80"),
             ("address", {"address": "a" * 201}, "največ 200"),
             ("birth_date", {"birth_date": "31. 2. 2009"}, "ne obstaja"),
             ("emso", {"emso": "12"}, ""), ("email", {"email": "brez-afne"}, ""))
    for field, bad, words in cases:
        r = client.post(url, data={**FORM, **bad, "form_token": token})
        assert r.status_code == 422, (field, r.status_code)
        message = error_beside(r.text, field)
        assert message and words in message, (field, message)
        assert "Žnidaršič" in r.text or field == "first_name"  # the typed values are kept
    # no form token, a wrong one, or no cookie (another site's post): refused
    assert client.post(url, data=FORM).status_code == 403
    assert client.post(url, data={**FORM, "form_token": "x" * 32}).status_code == 403
    assert public.post(url, data={**FORM, "form_token": token}).status_code == 403
    # another tenant: no school data there, so no form and no row
    other = f"{DS}/apply/another-school"
    assert client.get(other).status_code == 404
    assert client.post(other, data={**FORM, "form_token": token}).status_code == 404
    assert client.post(f"{DS}/apply/bad%20tenant", data=FORM).status_code in (404, 422)
    assert stored(school) == 0


def test_a_good_application_is_stored_as_through_the_api(school: School) -> None:
    save_profile(school.engine, school.tenant, {"name": SCHOOL, "address": "",
                                                "registration_no": ""})
    client, token = opened(school)
    url = f"{DS}/apply/{school.tenant}"
    done = client.post(url, data={**FORM, "form_token": token})
    assert done.status_code == 200 and 'id="apply-done"' in done.text, done.text[-500:]
    assert SCHOOL in done.text and "kategorijo B" in done.text
    assert f'{APPLY_CSRF_COOKIE}=""' in done.headers["set-cookie"]  # the token is spent
    # reloading the confirmation (the post again, without the cookie) applies no twice
    assert client.post(url, data={**FORM, "form_token": token}).status_code == 403
    with school.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(applications).where(
            applications.c.tenant == school.tenant)).mappings()]
    assert len(rows) == 1
    row = rows[0]
    assert (row["tenant"], row["category"], row["birth_date"], row["status"]) == (
        school.tenant, "B", "2009-01-15", "pending")
    assert row["consent_version"] == CONSENT_VERSION and row["consent_ms"] > 0
    assert (row["email"], row["phone"], row["emso"]) == (
        "neza@example.si", "+386 41 222 333", "1501009505111")


def test_the_form_in_english(school: School) -> None:
    save_profile(school.engine, school.tenant, {"name": SCHOOL, "address": "",
                                                "registration_no": ""})
    client, _ = school.client()
    page = client.get(f"/lang/en?next={DS}/apply/{school.tenant}")
    assert page.status_code == 200 and 'lang="en"' in page.text
    assert "Application for driver training" in page.text
    assert "I agree that the driving school processes" in page.text
