"""The quarantine is visible: listed on the fleet page of its own tenant only, counted
in the bridge's /metrics (issue 14, item 1)."""

from __future__ import annotations

import json
import re

from cloud_bridge.service import Bridge, BridgeSettings
from cloud_bridge.wire import Inbound
from tests.bridge.device_emulator import make_event
from tests.web.conftest import API_TOKEN, WebSite


def test_fleet_page_lists_the_tenants_quarantine_and_metrics_count_it(site: WebSite) -> None:
    a, b = site.tenants
    bridge = Bridge(BridgeSettings(db_url=str(site.engine.url.render_as_string(False)),
                                   keys_dir=site.keys_dir), engine=site.engine)  # not started
    poison = json.dumps({"v": 1, "tenant": a, "device": "gate-7", "events": [
        make_event(a, "gate-7", 1), make_event(a, "gate-7", 2, data={"t": float("nan")})]})
    bridge.process([Inbound(a, "gate-7", "events", poison.encode(), 0, 0, 0)])

    client, _ = site.login(site.user(a, "administrator"))
    page = client.get(f"/t/{a}/fleet").text
    assert "karanteni (1)" in page
    row = re.search(r'<tr data-quarantine="\d+">(.*?)</tr>', page, re.S)
    assert row is not None
    assert "gate-7" in row.group(1) and "NaN is not allowed" in row.group(1)
    other, _ = site.login(site.user(b, "administrator"))
    assert "karanteni" not in other.get(f"/t/{b}/fleet").text  # another tenant's: not shown

    operator = {"Authorization": f"Bearer {API_TOKEN}"}
    assert site.client().get("/metrics").status_code == 401  # tenant ids: operator only
    metrics = site.client().get("/metrics", headers=operator).text
    found = re.search(r"^bridge_quarantine_rows (\S+)$", metrics, re.M)
    assert found is not None and float(found.group(1)) >= 1
