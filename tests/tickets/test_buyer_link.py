"""The buyer's PDF link from the e-mail: the secret token opens the PDF without a login;
a wrong token, another tenant or a refunded ticket all answer 404."""

from __future__ import annotations

import time

import pytest

from cloud_bridge.member_qr_links import load_link_key
from cloud_bridge.tickets.notice import link_token
from tests.web.conftest import API_TOKEN, WebSite, engine, site  # noqa: F401 - fixtures

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_buyer_link_opens_the_pdf_until_refunded(site: WebSite) -> None:  # noqa: F811
    a, b = site.tenants
    api = site.client()
    api.headers["Authorization"] = f"Bearer {API_TOKEN}"
    now = int(time.time())
    made = api.post(f"/api/v1/tenants/{a}/tickets", json={
        "kind": "value_voucher", "value_cents": 3000, "price_cents": 3000,
        "valid_from": now - 60, "valid_to": now + 86400}).json()
    token = link_token(load_link_key(site.keys_dir), a, made["id"])
    anonymous = site.client()
    pdf = anonymous.get(f"/ticket-pdf/{a}/{made['id']}/{token}")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert anonymous.get(f"/ticket-pdf/{a}/{made['id']}/{token[:-2]}xx").status_code == 404
    assert anonymous.get(f"/ticket-pdf/{b}/{made['id']}/{token}").status_code == 404
    api.post(f"/api/v1/tenants/{a}/tickets/{made['id']}/refund", json={})
    assert anonymous.get(f"/ticket-pdf/{a}/{made['id']}/{token}").status_code == 404
