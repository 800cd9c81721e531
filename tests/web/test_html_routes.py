"""Every HTML route of the served bridge (staff pages, timesheets and attendance pages,
the driving school's office, the member's QR page) answers bad input in its address —
letters for numbers, huge and negative numbers, impossible dates, markup, an unknown id
— with an HTML page for a person: never a 500, never JSON."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from tests.web.conftest import WebSite
from tests.web.seed import seed
from tests.web.test_isolation import fill, routes

BAD_VALUES = ("abc", "99999999999999999999999", "-1", "", "31. 2. 2026", "13/2026",
              "<b>x</b>" * 40)
BAD_IDS = ("abc", "99999999999999999999", "-5")
# not pages for a person: the JSON API, scripts and their catalogs, downloads, streams
NOT_PAGES = re.compile(r"^/api/|/i18n|\.js|\.json|/live/stream|export\.zip|\.csv|/csv"
                       r"|^/driving-school/app/|^/docs|^/redoc|^/openapi|^/healthz|^/lang/"
                       r"|^/metrics|\.png$|\.pdf$")
PAGE_NAMES = ("page", "days", "day", "q", "state", "error", "notice", "site", "month",
              "candidate", "instructor", "employee", "id")


def query_names(route: Any) -> list[str]:
    dependant = getattr(route, "dependant", None)
    names = {p.alias for p in dependant.query_params} if dependant else set()
    return sorted(names | set(PAGE_NAMES))


def html_routes(site: WebSite) -> list[tuple[str, Any]]:
    return [(path, route) for method, path, route in routes(site.app)
            if method == "GET" and not NOT_PAGES.search(path)]


def assert_page(r: Any, where: tuple[str, str]) -> None:
    assert r.status_code < 500, (*where, r.status_code, r.text[-400:])
    if r.status_code in (301, 302, 303, 307, 308):
        return
    kind = r.headers.get("content-type", "")
    assert kind.startswith("text/html"), (*where, r.status_code, kind, r.text[:200])
    assert '"detail"' not in r.text[:300], where


def test_every_html_route_answers_bad_input_with_a_page(site: WebSite) -> None:
    a, _ = site.tenants
    client, csrf = site.login(site.user(a, "administrator"))
    seeded = seed(client, csrf, site.engine, a)
    walker = TestClient(site.app, raise_server_exceptions=False, cookies=client.cookies)
    checked = set()
    for path, route in html_routes(site):
        url = fill(path, a, seeded)
        bad_id_urls = [re.sub(r"\{\w+\}", bad, url) for bad in BAD_IDS] if "{" in url else []
        url = re.sub(r"\{\w+\}", "1", url)
        for value in BAD_VALUES:
            r = walker.get(url, params=dict.fromkeys(query_names(route), value),
                           follow_redirects=False, headers={"accept": "text/html"})
            assert_page(r, (url, value))
        for bad_url in bad_id_urls:
            assert_page(walker.get(bad_url, follow_redirects=False,
                                   headers={"accept": "text/html"}), (bad_url, "id"))
        checked.add(path)
    # the walk reached every area's pages
    for prefix in ("/t/{tenant}/members", "/t/{tenant}/timesheets", "/t/{tenant}/stats",
                   "/driving-school/candidates", "/member-qr/"):
        assert any(p.startswith(prefix) for p in checked), (prefix, sorted(checked))
    assert len(checked) >= 30
