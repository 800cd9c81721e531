"""axe-core on every HTML page of the bridge, in Chromium against a real server: each GET
route of the staff pages, timesheets and attendance pages, the driving school's office
and the public pages, opened as an administrator with seeded data, in Slovenian and in
English. No serious or critical violation is allowed (tests/a11y.py)."""

from __future__ import annotations

import re

import pytest

from tests.a11y import axe_violations
from tests.browser import chromium
from tests.web.seed import seed
from tests.web.test_html_routes import html_routes
from tests.web.test_isolation import fill
from tests.web.test_journeys_gym import Served, served, sign_in  # noqa: F401 - fixture

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_axe_finds_nothing_serious_on_any_page(served: Served) -> None:  # noqa: F811
    site, tenant = served.site, served.tenant
    admin = site.user(tenant, "administrator")
    client, csrf = site.login(admin)
    seeded = seed(client, csrf, site.engine, tenant)
    paths = sorted({re.sub(r"\{\w+\}", "1", fill(path, tenant, seeded))
                    for path, _route in html_routes(site)})
    problems: list[str] = []
    opened = 0
    with chromium() as browser:
        # some pages set a strict script policy; axe is injected past it (bypass_csp)
        page = browser.new_context(bypass_csp=True).new_page()
        sign_in(page, served.base, admin)
        for lang in ("sl", "en"):
            page.goto(f"{served.base}/lang/{lang}?next=/")
            for path in paths:
                response = page.goto(served.base + path)
                if response is None or "text/html" not in response.headers.get(
                        "content-type", ""):
                    continue
                opened += 1
                for v in axe_violations(page):
                    if v["impact"] in ("serious", "critical"):
                        problems.append(f"{lang} {path}: {v['impact']} {v['id']} "
                                        f"{v['help']} at {v['nodes']}")
    assert opened >= 50, opened  # both languages, every area's pages
    assert not problems, "\n".join(problems)
