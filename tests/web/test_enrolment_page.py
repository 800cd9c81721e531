"""The staff page that issues enrolment codes, in process (the whole flow with real
processes is tests/device/test_enrolment_served.py): administrators only, the form's
input checked with a Slovenian message, and no code from a bridge that could not redeem
it (this test bridge has no device CA)."""

from __future__ import annotations

from sqlalchemy import func, select

from cloud_bridge.enrolment_service import enrolment_codes
from tests.web.conftest import WebSite


def test_enrolment_page_checks_role_input_and_readiness(site: WebSite) -> None:
    tenant = site.tenants[0]
    url = f"/t/{tenant}/enrolment"
    reception, _ = site.login(site.user(tenant, "reception"))
    assert reception.get(url).status_code == 403
    admin, csrf = site.login(site.user(tenant, "administrator"))
    page = admin.get(url)
    assert page.status_code == 200 and 'id="new-enrolment"' in page.text
    assert 'id="enrolment-link"' in admin.get(f"/t/{tenant}/fleet").text
    assert 'id="enrolment-link"' not in reception.get(f"/t/{tenant}/fleet").text

    form = {"csrf_token": csrf, "device": "gate-01", "site": "center", "ttl_hours": "24",
            "profile": 'timezone = "Europe/Ljubljana"\n'}
    cases = [({"device": "bad id!"}, "od 1 do 64 črk"),
             ({"ttl_hours": "999"}, "Izberite eno od ponujenih možnosti"),
             ({"profile": "gates = ["}, "ni veljaven TOML"),
             ({}, "Ta strežnik še ne more vpisovati naprav")]
    for change, message in cases:
        r = admin.post(url, data={**form, **change})
        assert r.status_code == 422 and message in r.text, (change, r.text[-600:])
    assert admin.post(url, data={**form, "csrf_token": "wrong"}).status_code == 403
    with site.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(enrolment_codes)).scalar() == 0
