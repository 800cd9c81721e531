"""The gym staff pages after issue 16: every HTML page answers HTML (never JSON, never a
500) whatever is typed into its address; forms refuse with a message beside the field
and keep what was typed; a username taken in another tenant is refused like any taken
name; members made on the web get numbers a kiosk's digit pad can type; the language a
signed-in user picks follows them to another browser; the fleet offers what fits each
device."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from cloud_bridge.api_models import MemberIn
from cloud_bridge.db_schema import devices, members, write_tx
from cloud_bridge.membership_ops import create_member
from tests.web.conftest import WebSite
from tests.web.seed import Seeded, ok_redirect, seed
from tests.web.test_isolation import fill, routes

BAD_VALUES = ("abc", "99999999999999999999999", "-1", "", "3. 13. 2026", "<b>x</b>" * 40)
# pages that are not HTML for a person: the live stream, the ZIP export, scripts' JSON
NOT_HTML = ("/live/stream", "/data/export.zip", "/i18n/", "/qr.png", "/ticket.pdf")
OTHER_AREAS = ("/driving-school", "/api/", "/t/{tenant}/timesheets")


@pytest.fixture
def admin(site: WebSite) -> tuple[TestClient, str, Seeded]:
    a, _ = site.tenants
    client, csrf = site.login(site.user(a, "administrator"))
    return client, csrf, seed(client, csrf, site.engine, a)


def html_get_routes(site: WebSite) -> list[tuple[str, Any]]:
    found = []
    for method, path, route in routes(site.app):
        if method != "GET" or any(part in path for part in NOT_HTML + OTHER_AREAS):
            continue
        if path.startswith("/t/") or path in ("/", "/login") or path.startswith("/member-qr"):
            found.append((path, route))
    return found


def query_names(route: Any) -> list[str]:
    dependant = getattr(route, "dependant", None)
    names = {p.alias for p in dependant.query_params} if dependant else set()
    # and the names pages were once given by hand
    return sorted(names | {"page", "days", "day", "q", "state", "error", "notice", "site"})


def test_every_html_page_answers_html_to_any_query(
        site: WebSite, admin: tuple[TestClient, str, Seeded]) -> None:
    client, _, s = admin
    a, _ = site.tenants
    checked = []
    walker = TestClient(site.app, raise_server_exceptions=False, cookies=client.cookies)
    for path, route in html_get_routes(site):
        url = fill(path, a, s)
        for value in BAD_VALUES:
            params = {name: value for name in query_names(route)}
            r = walker.get(url, params=params, follow_redirects=False)
            assert r.status_code < 500, (url, value, r.status_code, r.text[-500:])
            if r.status_code not in (301, 302, 303, 307):
                kind = r.headers.get("content-type", "")
                assert kind.startswith("text/html"), (url, value, kind, r.text[:200])
                assert '"detail"' not in r.text[:200], (url, value)
        checked.append(path)
    # the walk reached the pages it is for
    for wanted in ("/t/{tenant}/members", "/t/{tenant}/stats", "/t/{tenant}/plans",
                   "/t/{tenant}/fleet", "/t/{tenant}/users", "/t/{tenant}/receipts",
                   "/t/{tenant}/members/{member_id}", "/t/{tenant}/live"):
        assert wanted in checked, wanted
    stats = walker.get(f"/t/{a}/stats", params={"days": "abc", "day": "32. 1. 2026"})
    assert stats.status_code == 422 and 'id="e-days"' in stats.text and 'id="e-day"' in stats.text
    assert 'value="abc"' in stats.text  # what was typed is kept


def test_a_receptionist_is_refused_users_with_an_html_page(site: WebSite) -> None:
    a, _ = site.tenants
    reception, _ = site.login(site.user(a, "reception"))
    r = reception.get(f"/t/{a}/users")
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
    assert "Nimate dostopa" in r.text or "dostop" in r.text
    reception.cookies.set("lang", "en")
    english = reception.get(f"/t/{a}/users")
    assert english.status_code == 403 and "access" in english.text


def test_a_username_of_another_tenant_is_refused_like_a_taken_one(site: WebSite) -> None:
    a, b = site.tenants
    admin_a, csrf = site.login(site.user(a, "administrator"))
    in_a = site.user(a, "reception")
    in_b = site.user(b, "reception")
    answers = []
    for name in (in_a, in_b):
        r = admin_a.post(f"/t/{a}/users", data={"csrf_token": csrf, "username": name,
                                                "password": "long enough pw", "role": "reception"})
        assert r.status_code == 422
        message = re.search(r'id="e-username" class="field-error">([^<]*)<', r.text)
        assert message, r.text[-2000:]
        answers.append(message.group(1))
        assert f'value="{name}"' in r.text  # kept, so it can be changed
        assert b not in message.group(1)  # nothing tells where the name is used
    assert answers[0] == answers[1] == "Tega uporabniškega imena ni mogoče uporabiti. " \
        "Izberite drugo."
    # and the form's own limits, beside their fields
    r = admin_a.post(f"/t/{a}/users", data={"csrf_token": csrf, "username": "ab",
                                            "password": "short", "role": "superuser"})
    assert r.status_code == 422
    for field in ("username", "password", "role"):
        assert f'id="e-{field}"' in r.text, field
    assert 'minlength="10"' in r.text and 'maxlength="120"' in r.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_members_made_on_the_web_get_numbers_old_ids_keep_working(
        site: WebSite, admin: tuple[TestClient, str, Seeded]) -> None:
    client, csrf, s = admin
    a, _ = site.tenants
    with write_tx(site.engine) as conn:  # an id of before, and one of the JSON API
        create_member(conn, a, MemberIn(id="m-0a1b2c3d4e5f", first_name="Stara"))
        create_member(conn, a, MemberIn(id="2000", first_name="Api"))
    made = []
    for first in ("Ana", "Bor"):
        loc = ok_redirect(client.post(f"/t/{a}/members", data={
            "csrf_token": csrf, "first_name": first, "waiver_signed_on": "3. 12. 2026"},
            follow_redirects=False))
        made.append(loc.split("/members/")[1].split("?")[0])
    assert s.member_id.isdigit() and made == ["2001", "2002"]
    page = client.get(f"/t/{a}/members/2001")
    assert "3. 12. 2026" in page.text
    with site.engine.connect() as conn:
        assert conn.execute(select(members.c.waiver_signed_on).where(
            members.c.tenant == a, members.c.id == "2001")).scalar() == "2026-12-03"
    assert client.get(f"/t/{a}/members/m-0a1b2c3d4e5f").status_code == 200
    assert "Stara" in client.get(f"/t/{a}/members", params={"q": "m-0a1b2c3d4e5f"}).text
    # a wrong e-mail and a date that does not exist: beside the fields, values kept
    r = client.post(f"/t/{a}/members", data={"csrf_token": csrf, "first_name": "Cene",
                                             "email": "cene.at.example", "waiver_signed_on":
                                             "31. 2. 2026"})
    assert r.status_code == 422 and 'id="e-email"' in r.text and 'id="e-waiver_signed_on"' in r.text
    assert 'value="Cene"' in r.text and 'value="cene.at.example"' in r.text
    r = client.post(f"/t/{a}/members", data={"csrf_token": csrf, "first_name": "X" * 41})
    assert r.status_code == 422 and "največ 40 znakov" in r.text


def test_the_language_a_user_picks_follows_them_to_another_browser(site: WebSite) -> None:
    a, _ = site.tenants
    name = site.user(a, "reception")
    first, _ = site.login(name)
    assert '<html lang="sl">' in first.get(f"/t/{a}/members").text
    r = first.get("/lang/en", params={"next": f"/t/{a}/members"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/t/{a}/members"
    assert "Members" in first.get(f"/t/{a}/members").text
    other, _ = site.login(name)  # a new browser: no language cookie of its own
    assert other.cookies.get("lang") == "en"
    page = other.get(f"/t/{a}/members").text
    assert '<html lang="en">' in page and "New member" in page
    other.get("/lang/sl")
    third, _ = site.login(name)
    assert '<html lang="sl">' in third.get(f"/t/{a}/members").text
    # an anonymous switch stays a cookie: nobody's setting changes
    anonymous = site.client()
    anonymous.get("/lang/en")
    fourth, _ = site.login(name)
    assert fourth.cookies.get("lang") == "sl"


def test_the_fleet_offers_what_fits_each_device(
        site: WebSite, admin: tuple[TestClient, str, Seeded]) -> None:
    client, csrf, s = admin
    a, _ = site.tenants
    till = [{"id": "p1", "role": "printer", "health": "ok", "detail": ""}]
    with write_tx(site.engine) as conn:  # a till (a printer, no gate), a gate offline
        for device, online, peripherals in (("till-1", True, till), ("gate-off", False, [
                {"id": "g1", "role": "gate", "health": "ok", "detail": ""}])):
            conn.execute(insert(devices).values(
                tenant=a, device=device, online=online, last_seen=int(time.time() * 1000),
                state_ts="2026-12-03T08:00:00.000Z", state={
                    "v": 1, "online": online, "site": "s1", "peripherals": peripherals}))
    page = client.get(f"/t/{a}/fleet").text
    till_row = page.split('data-device="till-1"')[1].split("</tr>")[0]
    gate = page.split(f'data-device="{s.device}"')[1].split("</tr>")[0]
    offline = page.split('data-device="gate-off"')[1].split("</tr>")[0]
    assert 'value="open"' not in till_row and "Blagajna ali tiskalnik" in till_row
    assert 'value="open"' in gate and "Krmilnik vrat" in gate
    assert 'value="open"' not in offline and "počakajo, da se naprava poveže" in offline
    # a forged open for a gate the till does not have is refused, with an HTML page
    r = client.post(f"/t/{a}/fleet/command", data={"csrf_token": csrf, "device": "till-1",
                                                   "name": "open", "gate": "g1"})
    assert r.status_code == 409 and r.headers["content-type"].startswith("text/html")
    assert not site.published.on(f"{a}/till-1/cmd/open")


def test_page_scripts_get_their_catalog(site: WebSite) -> None:
    c = site.client()
    sl = c.get("/i18n/sl.json").json()
    assert sl["lang"] == "sl" and sl["messages"]["reconnecting…"] == "ponovno povezujem …"
    assert c.get("/i18n/xx.json").json()["lang"] == "sl"  # unknown: the default


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_english_reader_saves_an_entitlement_form_as_it_was_filled(
        site: WebSite, admin: tuple[TestClient, str, Seeded]) -> None:
    client, csrf, s = admin
    a, _ = site.tenants
    client.cookies.set("lang", "en")
    page = client.get(f"/t/{a}/members/{s.member_id}").text
    form = page.split(f'/entitlements/{s.ent_id}"')[1].split("</form>")[0]
    values = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form))
    # the dates a form holds read back in any language (not 03/12/2026)
    assert re.fullmatch(r"\d{1,2}\. \d{1,2}\. \d{4}", values["valid_from"]), values
    r = client.post(f"/t/{a}/members/{s.member_id}/entitlements/{s.ent_id}",
                    data={**values, "kind": "membership", "csrf_token": csrf},
                    follow_redirects=False)
    assert r.status_code == 303, r.text[-1500:]
    shown = client.get(r.headers["location"]).text
    table = shown.split('class="entitlements"')[1].split("</table>")[0]
    assert "Entitlement saved." in shown and re.search(r"\d{2}/\d{2}/\d{4}", table)
