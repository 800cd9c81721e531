"""Waivers on the bridge: an administrator publishes versions, the reception's kiosk
signs the current one for a member; the signature keeps the text's hash and moment, the
member's waiver day reaches the devices through the change log, and a new version points
every device's config at its day so the gate asks for a new signature."""

from __future__ import annotations

import hashlib

from sqlalchemy import insert, select

from cloud_bridge.api_models import MemberIn
from cloud_bridge.db_schema import members, write_tx
from cloud_bridge.device_configs import get_desired, set_desired
from cloud_bridge.membership_ops import create_member
from cloud_bridge.waivers import waiver_signatures
from tests.web.conftest import WebSite
from tests.web.test_member_phone_link import phone_link

TEXT_V1 = "Vadim na lastno odgovornost.\nUpošteval bom hišni red."
TEXT_V2 = TEXT_V1 + "\nSavna: največ 15 minut."


def _member(site: WebSite, tenant: str, name: str) -> str:
    with write_tx(site.engine) as conn:
        member_id, _records = create_member(conn, tenant, MemberIn(first_name=name))
    return member_id


def test_publish_sign_and_sign_again_after_a_new_version(site: WebSite) -> None:
    tenant, other = site.tenants
    admin, csrf = site.login(site.user(tenant, "administrator"))
    set_desired(site.engine, tenant, "gate-1", {"site": "s1"}, by="t", now_ms=1)
    ana = _member(site, tenant, "Ana")
    stranger = _member(site, other, "Eva")
    base = f"/t/{tenant}"

    r = admin.post(f"{base}/waivers", data={"csrf_token": csrf, "title": "", "body": TEXT_V1})
    assert r.status_code == 422 and 'aria-invalid="true"' in r.text and TEXT_V1 in r.text
    r = admin.post(f"{base}/waivers", data={"csrf_token": csrf, "title": "Izjava",
                                            "body": TEXT_V1})
    assert r.status_code == 200 and hashlib.sha256(TEXT_V1.encode()).hexdigest()[:16] in r.text
    v1_day = get_desired(site.engine.connect(), tenant, "gate-1")
    assert v1_day is not None and v1_day.config["site_policy"]["waiver_current_since"]

    # the kiosk: without consent the typed name stays and the box is marked
    page = admin.get(f"{base}/members/{ana}/waiver")
    assert "Izjava" in page.text and 'name="version" value="1"' in page.text
    r = admin.post(f"{base}/members/{ana}/waiver", data={
        "csrf_token": csrf, "version": "1", "signed_name": "Ana Novak"})
    assert r.status_code == 422 and 'value="Ana Novak"' in r.text
    published_before = len(site.published.messages)
    r = admin.post(f"{base}/members/{ana}/waiver", data={
        "csrf_token": csrf, "version": "1", "signed_name": "Ana Novak", "consent": "1"},
        follow_redirects=False)
    assert r.status_code == 303
    assert len(site.published.messages) > published_before  # the change went to devices
    with site.engine.connect() as conn:
        sig = conn.execute(select(waiver_signatures).where(
            waiver_signatures.c.tenant == tenant)).mappings().one()
        signed_on = conn.execute(select(members.c.waiver_signed_on).where(
            members.c.tenant == tenant, members.c.id == ana)).scalar_one()
    assert sig["sha256"] == hashlib.sha256(TEXT_V1.encode()).hexdigest()
    assert sig["signed_name"] == "Ana Novak" and sig["channel"] == "kiosk"
    assert signed_on is not None
    signed_page = admin.get(f"{base}/members/{ana}/waiver").text
    assert 'id="waiver-state"' in signed_page and 'name="signed_name"' not in signed_page

    # a new version: the old signature no longer counts, and a stale form is refused
    admin.post(f"{base}/waivers", data={"csrf_token": csrf, "title": "Izjava",
                                        "body": TEXT_V2})
    page = admin.get(f"{base}/members/{ana}/waiver")
    assert 'name="version" value="2"' in page.text and "Savna" in page.text
    r = admin.post(f"{base}/members/{ana}/waiver", data={
        "csrf_token": csrf, "version": "1", "signed_name": "Ana Novak", "consent": "1"})
    assert r.status_code == 422
    with site.engine.connect() as conn:
        desired = get_desired(conn, tenant, "gate-1")
    assert desired is not None and desired.version == 3  # v1 and v2 each pointed the gate

    # tenants apart: another tenant's member is not found
    assert admin.get(f"{base}/members/{stranger}/waiver").status_code == 404


def test_reception_may_sign_but_not_publish(site: WebSite) -> None:
    tenant = site.tenants[0]
    desk, csrf = site.login(site.user(tenant, "reception"))
    r = desk.post(f"/t/{tenant}/waivers", data={"csrf_token": csrf, "title": "X",
                                                "body": "Y"})
    assert r.status_code == 403
    with write_tx(site.engine) as conn:
        conn.execute(insert(members).values(tenant=tenant, id="m-x", first_name="Ana",
                                            blocked=False, created_at=1, updated_at=1))
    page = desk.get(f"/t/{tenant}/members/m-x/waiver")
    assert page.status_code == 200 and 'name="signed_name"' not in page.text


def test_the_phone_page_asks_for_the_waiver_and_signs_it(site: WebSite) -> None:
    tenant, other = site.tenants
    admin, csrf = site.login(site.user(tenant, "administrator"))
    base = f"/t/{tenant}"
    loc = admin.post(f"{base}/members", data={"csrf_token": csrf, "first_name": "Živa",
                                              "last_name": "Kos"}, follow_redirects=False)
    member_id = loc.headers["location"].split("/members/")[1].split("?")[0]
    admin.post(f"{base}/members/{member_id}/credentials",
               data={"csrf_token": csrf, "kind": "qr", "code": ""}, follow_redirects=False)
    admin.post(f"{base}/members/{member_id}/entitlements", data={
        "csrf_token": csrf, "kind": "punch_card", "entries_total": "10"})
    admin.post(f"{base}/waivers", data={"csrf_token": csrf, "title": "Izjava", "body": TEXT_V1})
    link = phone_link(admin, tenant, member_id)
    bearer = {"Authorization": f"Bearer {link.partition('#k=')[2]}"}
    phone = site.client()
    token_url = f"/member-qr/{tenant}/{member_id}/token"
    sign_url = f"/member-qr/{tenant}/{member_id}/waiver"

    answer = phone.post(token_url, headers=bearer).json()
    assert answer["waiver"] == {"version": 1, "title": "Izjava", "body": TEXT_V1,
                                "again": False}
    # without the link's secret, or for another tenant: nothing is signed
    sig = {"version": 1, "signed_name": "Živa Kos", "consent": True}
    assert phone.post(sign_url, json=sig).status_code == 404
    assert phone.post(f"/member-qr/{other}/{member_id}/waiver", json=sig,
                      headers=bearer).status_code == 404
    assert phone.post(sign_url, json={**sig, "consent": False},
                      headers=bearer).status_code == 422
    assert phone.post(sign_url, json={**sig, "version": 2}, headers=bearer).status_code == 409
    assert phone.post(sign_url, json=sig, headers=bearer).status_code == 204
    assert phone.post(token_url, headers=bearer).json()["waiver"] is None
    with site.engine.connect() as conn:
        row = conn.execute(select(waiver_signatures).where(
            waiver_signatures.c.tenant == tenant)).mappings().one()
    assert row["channel"] == "phone" and row["signed_name"] == "Živa Kos"

    admin.post(f"{base}/waivers", data={"csrf_token": csrf, "title": "Izjava", "body": TEXT_V2})
    again = phone.post(token_url, headers=bearer).json()["waiver"]
    assert again["version"] == 2 and again["again"] is True


def test_the_signed_version_id_reaches_the_record_and_the_gate_config(site: WebSite) -> None:
    from cloud_bridge.api_models import MemberPatch
    from cloud_bridge.membership_ops import update_member
    from cloud_bridge.waivers import publish, sign
    from contracts.membership_changes import MemberUpsert

    tenant, _ = site.tenants
    set_desired(site.engine, tenant, "gate-1", {"site": "s1"}, by="t", now_ms=1)
    ana = _member(site, tenant, "Ana")
    publish(site.engine, tenant, "Izjava", TEXT_V1, by="test")
    publish(site.engine, tenant, "Izjava", TEXT_V2, by="test")
    with site.engine.connect() as conn:
        desired = get_desired(conn, tenant, "gate-1")
    assert desired is not None
    assert desired.config["site_policy"]["waiver_current_version"] == 2
    with write_tx(site.engine) as conn:
        (record,) = sign(conn, tenant, ana, 2, "Ana Novak", consent=True)
    change = MemberUpsert.model_validate(record)  # what the device validates
    assert change.waiver_version == 2 and change.waiver_signed_on is not None
    with write_tx(site.engine) as conn:
        # a day set by hand (a paper form) is no version's signature: the day rule applies
        (record,) = update_member(conn, tenant, ana, MemberPatch(
            waiver_signed_on=change.waiver_signed_on))
        version = conn.execute(select(members.c.waiver_version).where(
            members.c.tenant == tenant, members.c.id == ana)).scalar_one()
    assert "waiver_version" not in record and version is None
