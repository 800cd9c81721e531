"""The till catalogue page: the manager adds, edits, retires and offers products again,
each saved change a new catalogue version (never reused) holding the active products in
the device's contract form; a refused form keeps what was typed with the message beside
the field; reception and accountants see the products without the forms."""

from __future__ import annotations

import re

from cloud_bridge.catalogue.store import get_version
from cloud_bridge.db_schema import read_tx
from tests.web.conftest import WebSite


def saved_version(reply: object) -> int:
    assert reply.status_code == 303, reply.text[-600:]  # type: ignore[attr-defined]
    return int(reply.headers["location"].rsplit("saved=", 1)[1])  # type: ignore[attr-defined]


def test_the_manager_edits_the_catalogue_in_versions(site: WebSite) -> None:
    tenant, other = site.tenants
    client, csrf = site.login(site.user(tenant, "administrator"))
    base = f"/t/{tenant}/catalogue"

    bad = client.post(base, data={"csrf_token": csrf, "name": "Kava", "price": "1,805",
                                  "vat": "7", "barcode": "ab", "category": "Pijače"})
    assert bad.status_code == 422
    for field in ("price", "vat", "barcode"):
        assert f'id="e-{field}"' in bad.text, field
    assert 'value="1,805"' in bad.text and 'value="Kava"' in bad.text  # kept as typed
    assert "Vnesite znesek v evrih" in bad.text  # Slovenian by default

    assert saved_version(client.post(base, data={
        "csrf_token": csrf, "name": "Kava", "price": "1,80", "vat": "9.5",
        "category": "Pijače", "barcode": "3830001234567"}, follow_redirects=False)) == 1
    page = client.get(f"{base}?saved=1").text
    assert "Cenik blagajne" in page and "1,80" in page and "9,5 %" in page
    product_id = re.search(rf"{base}/(p[0-9a-f]+)/active", page)
    assert product_id
    product = f"{base}/{product_id.group(1)}"

    same_code = client.post(base, data={"csrf_token": csrf, "name": "Čaj", "price": "1,50",
                                        "vat": "9.5", "barcode": "3830001234567"})
    assert same_code.status_code == 422
    assert "To črtno kodo že ima izdelek Kava" in same_code.text

    assert saved_version(client.post(product, data={
        "csrf_token": csrf, "name": "Kava z mlekom", "price": "2", "vat": "9.5",
        "category": "Pijače", "barcode": ""}, follow_redirects=False)) == 2
    assert saved_version(client.post(f"{product}/active", data={"csrf_token": csrf},
                                     follow_redirects=False)) == 3
    assert saved_version(client.post(f"{product}/active", data={"csrf_token": csrf},
                                     follow_redirects=False)) == 4
    with read_tx(site.engine) as conn:
        v2, v3, v4 = (get_version(conn, tenant, v) for v in (2, 3, 4))
        assert get_version(conn, other, None) is None  # the other tenant has none
    assert v2 is not None and v3 is not None and v4 is not None
    assert [p.model_dump(exclude_none=True) for p in v2.products] == [
        {"id": product_id.group(1), "name": "Kava z mlekom", "price": "2.00", "vat": "9.5",
         "category": "Pijače"}]
    assert v3.products == [] and v4.products == v2.products  # retired, offered again

    # the other tenant's manager cannot reach this product
    foreign, foreign_csrf = site.login(site.user(other, "administrator"))
    assert foreign.post(f"/t/{other}/catalogue/{product_id.group(1)}",
                        data={"csrf_token": foreign_csrf, "name": "X", "price": "1",
                              "vat": "22"}).status_code == 404


def test_counter_staff_see_the_catalogue_without_the_forms(site: WebSite) -> None:
    tenant, _ = site.tenants
    manager, csrf = site.login(site.user(tenant, "administrator"))
    saved_version(manager.post(f"/t/{tenant}/catalogue", data={
        "csrf_token": csrf, "name": "Revija", "price": "3,50", "vat": "5"},
        follow_redirects=False))
    for role in ("reception", "accountant"):
        client, _csrf = site.login(site.user(tenant, role))
        page = client.get(f"/t/{tenant}/catalogue")
        assert page.status_code == 200 and "Revija" in page.text
        assert "new-product" not in page.text and "/active" not in page.text
        product_id = re.search(rf"/t/{tenant}/catalogue/(p[0-9a-f]+)", page.text)
        assert product_id
        one = client.get(f"/t/{tenant}/catalogue/{product_id.group(1)}")
        assert one.status_code == 200 and "edit-product" not in one.text
        assert "5 %" in one.text


def test_ticket_products_carry_what_the_printed_code_grants(site: WebSite) -> None:
    """Issue 22 part 6: a product sold as a ticket or voucher; its fields reach the
    device's catalogue version, and wrong ones are shown beside their fields."""
    tenant, _ = site.tenants
    client, csrf = site.login(site.user(tenant, "administrator"))
    base = f"/t/{tenant}/catalogue"
    form = {"csrf_token": csrf, "name": "Darilni bon", "price": "20,00", "vat": "exempt",
            "ticket_kind": "value", "ticket_days": "0", "ticket_value": "x"}
    bad = client.post(base, data=form)
    assert bad.status_code == 422
    assert 'id="e-ticket_days"' in bad.text and 'id="e-ticket_value"' in bad.text
    assert "Vnesite celo število od 1 do 3660." in bad.text
    assert saved_version(client.post(base, data={**form, "ticket_days": "365",
                                                 "ticket_value": "20,00"},
                                     follow_redirects=False)) == 1
    assert saved_version(client.post(base, data={
        "csrf_token": csrf, "name": "Dnevna vstopnica", "price": "8", "vat": "9.5",
        "ticket_kind": "day", "ticket_entries": "1", "ticket_days": "1",
        "ticket_value": "ignored"}, follow_redirects=False)) == 2
    with read_tx(site.engine) as conn:
        version = get_version(conn, tenant, 2)
    assert version is not None
    tickets = {p.name: p.ticket.model_dump(exclude_none=True) for p in version.products
               if p.ticket is not None}
    assert tickets == {"Darilni bon": {"kind": "value", "entries": 0, "valid_days": 365,
                                       "value": "20.00"},
                       "Dnevna vstopnica": {"kind": "day", "entries": 1, "valid_days": 1}}
    listing = client.get(base).text
    assert "(Darilni bon z vrednostjo)" in listing
    assert "(Dnevna vstopnica ali karta za več dni)" in listing
    product_id = re.search(rf"{base}/(p[0-9a-f]+)/active", listing)
    assert product_id
    page = client.get(f"{base}/{product_id.group(1)}").text
    assert 'value="365"' in page or 'value="1"' in page  # the ticket fields shown again
    # a plain product edited without the ticket fields stops being a ticket
    assert saved_version(client.post(f"{base}/{product_id.group(1)}", data={
        "csrf_token": csrf, "name": "Navaden", "price": "1", "vat": "22"},
        follow_redirects=False)) == 3
    with read_tx(site.engine) as conn:
        v3 = get_version(conn, tenant, 3)
    assert v3 is not None and sum(p.ticket is not None for p in v3.products) == 1
