"""The member's phone QR link: staff issue a signed-QR credential and see the link on the
member page; the phone page's token endpoint answers only with the link's secret, hands
out tokens the gates verify with the tenant key, and revoking the credential kills the
old link."""

from __future__ import annotations

import re
import time

from cloud_bridge.tenant_keys import TenantKeyStore
from contracts.qr_token import verify_token
from tests.web.conftest import WebSite
from tests.web.seed import ok_redirect


def phone_link(client, tenant: str, member_id: str) -> str:  # type: ignore[no-untyped-def]
    page = client.get(f"/t/{tenant}/members/{member_id}").text
    found = re.search(r'class="phone-link" type="text" readonly value="([^"]+)"', page)
    assert found, "no phone link on the member page"
    return found.group(1)


def test_phone_link_gives_gate_tokens_and_dies_with_its_credential(site: WebSite) -> None:
    a, b = site.tenants
    client, csrf = site.login(site.user(a, "reception"))
    loc = ok_redirect(client.post(f"/t/{a}/members", data={
        "csrf_token": csrf, "first_name": "Živa", "last_name": "Kos"}, follow_redirects=False))
    member_id = loc.split("/members/")[1].split("?")[0]
    ok_redirect(client.post(f"/t/{a}/members/{member_id}/credentials", data={
        "csrf_token": csrf, "kind": "qr", "code": ""}, follow_redirects=False))
    link = phone_link(client, a, member_id)
    phone = site.client()  # the member's phone: no staff session
    token_url = f"/member-qr/{a}/{member_id}/token"
    fragment = link.partition("#k=")[2]
    # no membership yet: the page is told why, not handed a code the gate refuses
    none = phone.post(token_url, headers={"Authorization": f"Bearer {fragment}"})
    assert none.status_code == 403 and none.json() == {"error": "no_valid_pass"}
    ok_redirect(client.post(f"/t/{a}/members/{member_id}/entitlements", data={
        "csrf_token": csrf, "kind": "punch_card", "entries_total": "10"},
        follow_redirects=False))
    path, _, fragment = link.partition("#k=")
    assert path.endswith(f"/member-qr/{a}/{member_id}") and len(fragment) == 22

    page = phone.get(f"/member-qr/{a}/{member_id}")
    assert page.status_code == 200 and "no-referrer" in page.headers["referrer-policy"]
    # Slovenian, with the script's texts served in the page's catalog
    assert '<html lang="sl">' in page.text and "Vstopna koda" in page.text
    assert "nimate veljavne" in page.text.encode().decode("unicode_escape", "ignore") \
        or "nimate veljavne" in page.text
    reply = phone.post(token_url, headers={"Authorization": f"Bearer {fragment}"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["first_name"] == "Živa" and body["svg"].startswith("<svg")
    public = TenantKeyStore(site.keys_dir).get(a).public_key
    verify_token(body["token"], public, int(time.time()))  # a gate accepts it offline

    # a wrong secret, another tenant's path, another member: the same 404
    assert phone.post(token_url, headers={"Authorization": "Bearer " + "A" * 22}
                      ).status_code == 404
    assert phone.post(f"/member-qr/{b}/{member_id}/token",
                      headers={"Authorization": f"Bearer {fragment}"}).status_code == 404

    cred_id = re.search(r'data-credential="([^"]+)"',
                        client.get(f"/t/{a}/members/{member_id}").text).group(1)  # type: ignore[union-attr]
    ok_redirect(client.post(f"/t/{a}/members/{member_id}/credentials/{cred_id}/block",
                            data={"csrf_token": csrf}, follow_redirects=False))
    blocked = phone.post(token_url, headers={"Authorization": f"Bearer {fragment}"})
    assert blocked.status_code == 403 and blocked.json() == {"error": "blocked"}
    ok_redirect(client.post(f"/t/{a}/members/{member_id}/credentials/{cred_id}/revoke",
                            data={"csrf_token": csrf}, follow_redirects=False))
    ok_redirect(client.post(f"/t/{a}/members/{member_id}/credentials", data={
        "csrf_token": csrf, "kind": "qr", "code": ""}, follow_redirects=False))
    # the lost phone's old link is dead; the new link works
    assert phone.post(token_url, headers={"Authorization": f"Bearer {fragment}"}
                      ).status_code == 404
    new_fragment = phone_link(client, a, member_id).partition("#k=")[2]
    assert new_fragment != fragment
    assert phone.post(token_url, headers={"Authorization": f"Bearer {new_fragment}"}
                      ).status_code == 200
