"""The ticket page's "sell on a receipt" form: a wrong tax number is told beside its
field with what was typed kept; a good one sends the POS job to the chosen till."""

from __future__ import annotations

import json

import pytest

from agent.pos.job import parse_job
from tests.web.conftest import WebSite, engine, site  # noqa: F401 - fixtures
from tests.web.seed import ok_redirect, report_device

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_sell_form(site: WebSite) -> None:  # noqa: F811
    a, _ = site.tenants
    report_device(site.engine, a, "till-1")
    client, csrf = site.login(site.user(a, "reception"))
    loc = ok_redirect(client.post(f"/t/{a}/tickets", data={
        "csrf_token": csrf, "kind": "day", "entries": "1", "price": "9,00",
        "valid_from": "1. 12. 2026", "valid_days": "1"}, follow_redirects=False))
    page = loc.split("?")[0]
    sale = {"csrf_token": csrf, "device": "till-1", "payment": "card", "vat": "22",
            "operator_name": "Žiga Čebašek", "operator_tax_number": "1234"}
    bad = client.post(f"{page}/sell", data=sale)
    assert bad.status_code == 422 and 'id="e-operator_tax_number"' in bad.text
    assert 'value="Žiga Čebašek"' in bad.text
    assert not site.published.on("/cmd/print")
    done = ok_redirect(client.post(f"{page}/sell", data={**sale,
                                                         "operator_tax_number": "12345678"},
                                   follow_redirects=False))
    assert "sent=1" in done
    [payload] = site.published.on("/till-1/cmd/print")
    job = parse_job(json.loads(payload)["args"])
    assert str(job.totals.total) == "9.00" and job.operator.tax_number == 12345678
    shown = client.get(done)
    assert "Prodaja je poslana blagajni" in shown.text
