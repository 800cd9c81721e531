"""Drawn waiver signatures (issue 18, part 2) on SQLite and PostgreSQL: the kiosk form
and the phone page take the strokes as an SVG path, kept with its SHA-256 beside the
text's; a drawing that is not one (markup, points outside the pad, a dot) is refused
beside the field with the typed name kept; the typed name stays the alternative."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cloud_bridge.errors import Invalid
from cloud_bridge.waiver_drawing import check_drawing, drawing_svg
from cloud_bridge.waivers import waiver_signatures
from tests.web.conftest import WebSite
from tests.web.test_member_phone_link import phone_link

TEXT = "Vadim na lastno odgovornost."
# two strokes, as signature_pad.js writes them
DRAWING = ("M20,150 L40,120 L60,90 L80,70 L100,80 L110,120 L130,150 "
           "M200,100 L240,60 L280,100 L320,60 L360,100")


def _signature(site: WebSite, tenant: str, member_id: str) -> dict[str, object]:
    with site.engine.connect() as conn:
        return dict(conn.execute(select(waiver_signatures).where(
            waiver_signatures.c.tenant == tenant,
            waiver_signatures.c.member_id == member_id)).mappings().one())


def _new_member(site: WebSite, tenant: str) -> tuple[TestClient, str, str]:
    admin, csrf = site.login(site.user(tenant, "administrator"))
    loc = admin.post(f"/t/{tenant}/members", data={"csrf_token": csrf, "first_name": "Živa",
                                                   "last_name": "Kos"}, follow_redirects=False)
    return admin, csrf, loc.headers["location"].split("/members/")[1].split("?")[0]


@pytest.mark.parametrize("bad", [
    "", "M10,10 L20,20", "<script>alert(1)</script>", "M10,10 L700,20 " * 5,
    "M1,1 " + "L2,2 " * 4 + 'L3,3"/><script>', "M1.5,2 " * 9, "L1,1 " * 9])
def test_only_a_drawing_passes(bad: str) -> None:
    with pytest.raises(Invalid, match=r"^drawing:"):
        check_drawing(bad)


def test_a_checked_drawing_is_normalised_and_renders_as_svg() -> None:
    assert check_drawing("  " + DRAWING.replace(" ", "  ") + "\n") == DRAWING
    assert f'<path d="{DRAWING}"' in drawing_svg(DRAWING)


def test_the_kiosk_takes_a_drawn_signature_and_keeps_its_hash(site: WebSite) -> None:
    tenant, _ = site.tenants
    admin, csrf, member = _new_member(site, tenant)
    admin.post(f"/t/{tenant}/waivers", data={"csrf_token": csrf, "title": "Izjava",
                                             "body": TEXT})
    url = f"/t/{tenant}/members/{member}/waiver"
    page = admin.get(url).text
    assert 'class="signature-pad"' in page and "/static/signature_pad.js" in page
    r = admin.post(url, data={"csrf_token": csrf, "version": "1", "consent": "1",
                              "signed_name": "Živa Kos", "drawing": "M1,1 L2,2"})
    assert r.status_code == 422 and "Risba ni podpis" in r.text and 'value="Živa Kos"' in r.text
    r = admin.post(url, data={"csrf_token": csrf, "version": "1", "consent": "1",
                              "signed_name": ""})
    assert r.status_code == 422 and "ali narišite podpis" in r.text
    r = admin.post(url, data={"csrf_token": csrf, "version": "1", "consent": "1",
                              "signed_name": "", "drawing": DRAWING}, follow_redirects=False)
    assert r.status_code == 303
    sig = _signature(site, tenant, member)
    assert sig["method"] == "drawn" and sig["channel"] == "kiosk"
    assert sig["drawing_svg"] == DRAWING
    assert sig["drawing_sha256"] == hashlib.sha256(DRAWING.encode()).hexdigest()
    assert sig["sha256"] == hashlib.sha256(TEXT.encode()).hexdigest()
    signed = admin.get(url).text  # reception sees what was drawn
    assert f'<path d="{DRAWING}"' in signed and 'aria-label="Narisani podpis"' in signed


def test_the_phone_page_takes_a_drawn_or_a_typed_signature(site: WebSite) -> None:
    tenant, _ = site.tenants
    admin, csrf, member = _new_member(site, tenant)
    base = f"/t/{tenant}/members/{member}"
    admin.post(f"{base}/credentials", data={"csrf_token": csrf, "kind": "qr", "code": ""},
               follow_redirects=False)
    admin.post(f"/t/{tenant}/waivers", data={"csrf_token": csrf, "title": "Izjava",
                                             "body": TEXT})
    link = phone_link(admin, tenant, member)
    path, key = link.split("://", 1)[1].split("/", 1)[1].split("#k=")
    phone = site.client()
    assert 'class="signature-pad"' in phone.get("/" + path).text
    sign = f"/{path}/waiver"
    bearer = {"authorization": f"Bearer {key}"}
    r = phone.post(sign, headers=bearer, json={"version": 1, "signed_name": "",
                                               "consent": True, "drawing": "<svg/>"})
    assert r.status_code == 422
    r = phone.post(sign, headers=bearer, json={"version": 1, "signed_name": "Živa Kos",
                                               "consent": True, "drawing": DRAWING})
    assert r.status_code == 204
    sig = _signature(site, tenant, member)
    assert (sig["method"], sig["channel"], sig["signed_name"]) == ("drawn", "phone", "Živa Kos")
    assert sig["drawing_sha256"] == hashlib.sha256(DRAWING.encode()).hexdigest()
