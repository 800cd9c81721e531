"""The phone page for staff and the phone punch API on a real app (SQLite): a site's
geofence typed with mistakes (messages beside the fields, typed values kept), then
right; an employee's phone enrolled (the link shown once), signed in with the link and
PIN, a punch taken over HTTP (refused outside under "refuse", a second send of it stored
once), the phone signed out by the employer and refused from then on; an accountant
may not open the page."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cloud_bridge.attendance.schema import audit, phone_enrolments
from cloud_bridge.db_schema import read_tx
from tests.web.conftest import WebSite
from tests.web.test_edc_pages import field_error, post

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _punch(client: TestClient, session: str, lat: float, lon: float,
           pid: str | None = None) -> object:
    now = datetime.now(UTC).isoformat()
    return client.post("/api/v1/phone/punch", headers={"authorization": f"Bearer {session}"},
                       json={"id": pid or str(uuid.uuid4()), "type": "arrival", "at": now,
                             "sent_at": now, "lat": lat, "lon": lon, "accuracy": 8})


def test_sites_enrolment_punch_and_sign_out(site: WebSite) -> None:
    a, _b = site.tenants
    admin, csrf = site.login(site.user(a, "administrator"))
    post(admin, csrf, f"/t/{a}/employees", number="51", first_name="Eva", last_name="Mlakar",
         pin="2468")
    bad = post(admin, csrf, f"/t/{a}/phones/sites", site="pisarna", shape="circle",
               lat="46,0569", lon="", radius_m="3", policy="refuse", retention_days="0")
    assert bad.status_code == 422  # type: ignore[attr-defined]
    html = bad.text  # type: ignore[attr-defined]
    assert field_error(html, "radius_m") and field_error(html, "retention_days")
    assert 'value="46,0569"' in html
    ok = post(admin, csrf, f"/t/{a}/phones/sites", site="pisarna", shape="circle",
              lat="46,0569", lon="14,5058", radius_m="100", policy="refuse",
              retention_days="14")
    assert ok.status_code == 303  # type: ignore[attr-defined]
    page = admin.get(f"/t/{a}/phones?saved=site").text
    assert "Delovišče je shranjeno." in page and "krog s polmerom 100 m" in page
    enrolled = post(admin, csrf, f"/t/{a}/phones/enrol", employee="51", site="pisarna",
                    policy="")
    link = unescape(re.search(r"<code>([^<]+)</code>", enrolled.text).group(1))  # type: ignore[attr-defined, union-attr]
    token = link.split("#t=")[1]
    assert f"/phone/{a}#t=" in link

    phone = site.client()
    assert phone.get(f"/phone/{a}").status_code == 200
    wrong = phone.post(f"/api/v1/phone/{a}/session", json={"token": token, "pin": "1111"})
    assert wrong.status_code == 422
    session = phone.post(f"/api/v1/phone/{a}/session",
                         json={"token": token, "pin": "2468"}).json()["session"]
    refused = _punch(phone, session, 46.0569, 14.52)
    assert refused.status_code == 403 and refused.json()["reason"] == "outside"  # type: ignore[attr-defined]
    pid = str(uuid.uuid4())
    first = _punch(phone, session, 46.0570, 14.5059, pid)
    assert first.status_code == 201 and first.json()["location"] == "inside"  # type: ignore[attr-defined]
    again = _punch(phone, session, 46.0570, 14.5059, pid)
    assert again.status_code == 200 and again.json()["seq"] == first.json()["seq"]  # type: ignore[attr-defined]
    assert _punch(phone, "not-a-session", 46.0570, 14.5059).status_code == 401  # type: ignore[attr-defined]

    timeline = admin.get(f"/t/{a}/timeline?span=day&employee=51").text
    assert timeline.count('data-source="phone"') == 1  # the one accepted punch, by source
    assert 'data-source="terminal"' not in timeline
    # that arrival has no departure yet: no alert is due before the day is over
    listing = admin.get(f"/t/{a}/phones").text
    enrolment = re.search(r'data-enrolment="(\d+)"', listing).group(1)  # type: ignore[union-attr]
    assert token not in listing
    out = post(admin, csrf, f"/t/{a}/phones/{enrolment}/revoke")
    assert out.status_code == 303  # type: ignore[attr-defined]
    assert _punch(phone, session, 46.0570, 14.5059).status_code == 401  # type: ignore[attr-defined]
    with read_tx(site.engine) as conn:
        actions = {r.action for r in conn.execute(select(audit.c.action).where(
            audit.c.tenant == a))}
    assert {"geofence_set", "phone_enrol", "phone_sign_in", "phone_refused",
            "phone_revoke"} <= actions
    accountant, _c = site.login(site.user(a, "accountant"))
    assert accountant.get(f"/t/{a}/phones").status_code == 403


def test_sick_leave_request_with_document(site: WebSite) -> None:
    """The employee asks from the phone for sick leave with the certificate (a wrong file
    type first: the message beside the field); the manager downloads it and approves."""
    a, _b = site.tenants
    admin, csrf = site.login(site.user(a, "administrator"))
    post(admin, csrf, f"/t/{a}/employees", number="52", first_name="Iza", pin="1357")
    enrolled = post(admin, csrf, f"/t/{a}/phones/enrol", employee="52", site="", policy="")
    token = unescape(re.search(r"<code>([^<]+)</code>", enrolled.text).group(1)).split("#t=")[1]  # type: ignore[attr-defined, union-attr]
    phone = site.client()
    phone.post(f"/api/v1/phone/{a}/session", json={"token": token, "pin": "1357"})
    assert phone.get(f"/phone/{a}/me").status_code == 200  # the cookie signs it in
    assert site.client().get(f"/phone/{a}/me").status_code == 401  # no cookie: no records
    page = phone.get(f"/phone/{a}/me").text
    form_token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    fields = {"csrf_token": form_token, "kind": "sick_leave", "first_day": "2026-11-23",
              "last_day": "2026-11-24", "note": "angina"}
    bad = phone.post(f"/phone/{a}/me/absence-requests", data=fields,
                     files={"document": ("virus.exe", b"MZ", "application/x-msdownload")})
    assert bad.status_code == 422
    assert "PDF, JPEG ali PNG" in bad.text and 'value="angina"' in bad.text
    pdf = b"%PDF-1.4 potrdilo"
    ok = phone.post(f"/phone/{a}/me/absence-requests", data=fields,
                    files={"document": ("potrdilo.pdf", pdf, "application/pdf")},
                    follow_redirects=False)
    assert ok.status_code == 303
    forged = phone.post(f"/phone/{a}/me/absence-requests", data={**fields, "csrf_token": "x"})
    assert forged.status_code == 401
    listing = admin.get(f"/t/{a}/absence-requests").text
    request_id = re.search(r'data-request="(\d+)"', listing).group(1)  # type: ignore[union-attr]
    doc = post(admin, csrf, f"/t/{a}/absence-requests/{request_id}/document")
    assert doc.content == pdf and doc.headers["cache-control"] == "no-store"  # type: ignore[attr-defined]
    approved = post(admin, csrf, f"/t/{a}/absence-requests/{request_id}/approve")
    assert approved.status_code == 303  # type: ignore[attr-defined]
    assert "odobril" in phone.get(f"/phone/{a}/me").text


def test_wrong_pins_lock_the_link_for_a_while(site: WebSite) -> None:
    """Five wrong PINs in a row lock the link: the right PIN is refused too (429, with no
    hint whether it was right) until the lock ends; the employer sees it in the audit."""
    a, _b = site.tenants
    admin, csrf = site.login(site.user(a, "administrator"))
    post(admin, csrf, f"/t/{a}/employees", number="52", first_name="Jure", last_name="Kos",
         pin="8642")
    enrolled = post(admin, csrf, f"/t/{a}/phones/enrol", employee="52", site="", policy="")
    link = unescape(re.search(r"<code>([^<]+)</code>", enrolled.text).group(1))  # type: ignore[attr-defined, union-attr]
    token = link.split("#t=")[1]
    phone = site.client()
    url = f"/api/v1/phone/{a}/session"
    for _ in range(4):
        assert phone.post(url, json={"token": token, "pin": "1111"}).status_code == 422
    assert phone.post(url, json={"token": token, "pin": "8642"}).status_code == 200  # resets
    for _ in range(5):
        assert phone.post(url, json={"token": token, "pin": "1111"}).status_code == 422
    locked = phone.post(url, json={"token": token, "pin": "8642"})
    assert locked.status_code == 429 and "15" in locked.json()["detail"]
    with read_tx(site.engine) as conn:
        actions = [r.action for r in conn.execute(select(audit.c.action).where(
            audit.c.tenant == a, audit.c.action == "phone_pin_locked"))]
    assert actions == ["phone_pin_locked"]
    with site.engine.begin() as conn:  # the lock's time has passed
        conn.execute(phone_enrolments.update().where(phone_enrolments.c.tenant == a)
                     .values(locked_until=1))
    assert phone.post(url, json={"token": token, "pin": "8642"}).status_code == 200
