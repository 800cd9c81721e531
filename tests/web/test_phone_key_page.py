"""Enrolling the member's phone as a contactless key from the phone page (issue 18,
part 3) on SQLite and PostgreSQL: with the link's secret and a proof signed by the key,
the bridge issues a phone credential whose hash is the one a gate computes from the key
the phone presents, and publishes it; a proof for another member, a second enrolment of
the same key, a wrong secret and another tenant are refused (Chromium:
test_journey_phone_key.py)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from sqlalchemy import select

from cloud_bridge.db_schema import credentials
from cloud_bridge.phone_enrolment import enrolment_message
from cloud_bridge.tenant_keys import TenantKeyStore
from contracts.credential_hash import credential_hash
from tests.web.conftest import WebSite
from tests.web.test_member_phone_link import phone_link


def _app_key() -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    return key, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _member_with_link(site: WebSite, tenant: str) -> tuple[TestClient, str, str, str]:
    admin, csrf = site.login(site.user(tenant, "reception"))
    loc = admin.post(f"/t/{tenant}/members", data={"csrf_token": csrf, "first_name": "Živa"},
                     follow_redirects=False)
    member = loc.headers["location"].split("/members/")[1].split("?")[0]
    admin.post(f"/t/{tenant}/members/{member}/credentials",
               data={"csrf_token": csrf, "kind": "qr", "code": ""}, follow_redirects=False)
    link = phone_link(admin, tenant, member)
    return admin, member, link, link.split("#k=")[1]


def _phones(site: WebSite, tenant: str, member: str) -> list[str]:
    with site.engine.connect() as conn:
        return [r.hash for r in conn.execute(select(credentials.c.hash).where(
            credentials.c.tenant == tenant, credentials.c.member_id == member,
            credentials.c.kind == "phone"))]


def test_the_phone_page_enrols_a_key_the_app_proves_it_holds(site: WebSite) -> None:
    tenant, other = site.tenants
    _admin, member, _link, secret = _member_with_link(site, tenant)
    key, public = _app_key()
    url = f"/member-qr/{tenant}/{member}/phone-key"
    bearer = {"authorization": f"Bearer {secret}"}
    c = site.client()
    foreign = key.sign(enrolment_message(tenant, "someone-else")).hex()
    r = c.post(url, headers=bearer, json={"public_key": public, "proof": foreign})
    assert r.status_code == 422 and _phones(site, tenant, member) == []
    proof = key.sign(enrolment_message(tenant, member)).hex()
    assert c.post(url, headers={"authorization": "Bearer " + "x" * 22},
                  json={"public_key": public, "proof": proof}).status_code == 404
    assert c.post(f"/member-qr/{other}/{member}/phone-key", headers=bearer,
                  json={"public_key": public, "proof": proof}).status_code == 404
    assert c.post(url, headers=bearer, json={"public_key": public[:-2],
                                             "proof": proof}).status_code == 422
    published = len(site.published.messages)
    r = c.post(url, headers=bearer, json={"public_key": public, "proof": proof})
    assert r.status_code == 201 and r.json()["credential_id"]
    hmac_key = TenantKeyStore(site.keys_dir).get(tenant).hmac_key
    assert _phones(site, tenant, member) == [credential_hash(hmac_key, "phone", public)]
    assert len(site.published.messages) > published  # the devices learn it at once
    r = c.post(url, headers=bearer, json={"public_key": public, "proof": proof})
    assert r.status_code == 409 and len(_phones(site, tenant, member)) == 1
