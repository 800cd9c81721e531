"""The device configuration pages: the drift table, a device's desired config, and the
administrators' form that sets the next version (refusing secrets in clear by key)."""

from __future__ import annotations

from sqlalchemy import insert, select

from cloud_bridge.db_schema import devices, read_tx
from cloud_bridge.device_configs import get_desired, set_desired
from cloud_bridge.web.auth_schema import audit_log
from tests.web.conftest import WebSite

GOOD_TOML = 'site = "s1"\n\n[[gates]]\nid = "g1"\nurl = "sim:"\n'
CLEAR_TOML = GOOD_TOML + '\n[keys]\ncredential_hmac_key = "base64:QUFBQUFBQUFBQUFBQUFBQUFBQUE="\n'


def test_the_form_refuses_secrets_and_stores_a_good_config(site: WebSite) -> None:
    tenant = site.tenants[0]
    admin, csrf = site.login(site.user(tenant, "administrator"))
    page = f"/t/{tenant}/device-config/gate-1"
    refused = admin.post(page, data={"csrf_token": csrf, "config_toml": CLEAR_TOML})
    assert refused.status_code == 422
    assert "keys.credential_hmac_key: a secret in clear" in refused.text
    with read_tx(site.engine) as conn:
        assert get_desired(conn, tenant, "gate-1") is None
    bad_toml = admin.post(page, data={"csrf_token": csrf, "config_toml": "site = "})
    assert bad_toml.status_code == 422 and "ni veljaven TOML" in bad_toml.text  # sl: default
    done = admin.post(page, data={"csrf_token": csrf, "config_toml": GOOD_TOML},
                      follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].endswith("?saved=1")
    with read_tx(site.engine) as conn:
        stored = get_desired(conn, tenant, "gate-1")
        trace = conn.execute(select(audit_log.c.action, audit_log.c.detail).where(
            audit_log.c.tenant == tenant, audit_log.c.action == "device.config")).all()
    assert stored is not None and stored.config["gates"] == [{"id": "g1", "url": "sim:"}]
    assert [(a, d) for a, d in trace] == [("device.config", {"version": 1})]
    shown = admin.get(page + "?saved=1", headers={"accept-language": "en"})
    assert 'id="saved"' in shown.text and 'data-drift="yes"' in shown.text


def test_the_table_shows_drift_and_reception_cannot_set(site: WebSite) -> None:
    tenant = site.tenants[0]
    set_desired(site.engine, tenant, "gate-1", {"site": "s1"}, by="t", now_ms=1)
    set_desired(site.engine, tenant, "gate-1", {"site": "s1", "timezone": "UTC"}, by="t",
                now_ms=2)
    with site.engine.begin() as conn:
        conn.execute(insert(devices).values(
            tenant=tenant, device="gate-1", online=True, last_seen=1,
            state={"v": 1, "online": True, "config": {
                "applied_version": 1, "status": "rolled_back", "attempted_version": 2,
                "reason": "not healthy within 20 s: reader door2: cannot open"}}))
    reception, csrf = site.login(site.user(tenant, "reception"))
    table = reception.get(f"/t/{tenant}/device-config", headers={"accept-language": "sl"})
    assert table.status_code == 200
    assert 'data-device="gate-1" data-drift="yes"' in table.text
    assert "vrnjeno na prejšnje" in table.text and "reader door2" in table.text
    device = reception.get(f"/t/{tenant}/device-config/gate-1")
    assert '+timezone = &#34;UTC&#34;' in device.text and "config_toml" not in device.text
    refused = reception.post(f"/t/{tenant}/device-config/gate-1",
                             data={"csrf_token": csrf, "config_toml": GOOD_TOML})
    assert refused.status_code == 403
    other, _ = site.login(site.user(site.tenants[1], "administrator"))
    assert 'data-device="gate-1"' not in other.get(
        f"/t/{site.tenants[1]}/device-config").text
