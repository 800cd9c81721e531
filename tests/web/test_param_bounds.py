"""Numbers in the staff pages' URLs are bounded like the JSON API's (SQLite and
PostgreSQL): past what the database holds the answer is 422, not 500; the live stream's
Last-Event-ID header, free text from the browser, falls back to ``after``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from cloud_bridge.param_bounds import MAX_BIGINT, MAX_ROW_ID
from cloud_bridge.web.live import resume_cursor
from tests.web.conftest import WebSite

HUGE = 99999999999999999999999


def admin_client(site: WebSite) -> tuple[TestClient, str, str]:
    a, _ = site.tenants
    client, csrf = site.login(site.user(a, "administrator"))
    return TestClient(site.app, raise_server_exceptions=False, cookies=client.cookies), csrf, a


def test_numbers_in_page_urls_are_bounded(site: WebSite,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    client, csrf, a = admin_client(site)
    # users.id is a 32-bit integer: 2**31 used to pass the check and overflow PostgreSQL
    for user_id in (MAX_ROW_ID + 1, HUGE):
        r = client.post(f"/t/{a}/users/{user_id}/active",
                        data={"csrf_token": csrf, "active": "no"}, follow_redirects=False)
        assert r.status_code == 422, (user_id, r.text)
    r = client.post(f"/t/{a}/users/{MAX_ROW_ID}/active",
                    data={"csrf_token": csrf, "active": "no"}, follow_redirects=False)
    assert r.status_code == 404
    assert client.get(f"/t/{a}/live/stream", params={"after": HUGE}).status_code == 422
    assert client.get(f"/t/{a}/receipts/dev1/{HUGE}").status_code == 422
    assert client.get(f"/t/{a}/stats", params={"days": HUGE}).status_code == 422
    monkeypatch.setattr("cloud_bridge.web.live.STREAM_MAX_S", 0.5)
    for last_id in (str(HUGE), "²", str(MAX_BIGINT + 1)):
        r = client.get(f"/t/{a}/live/stream", headers={"Last-Event-ID": last_id.encode("latin-1")})
        assert r.status_code == 200 and "event: figures" in r.text, (last_id, r.text[:300])


def test_resume_cursor_takes_only_a_bigint_of_ascii_digits() -> None:
    assert resume_cursor("1700000000000", 5) == 1700000000000
    assert resume_cursor(str(MAX_BIGINT), 5) == MAX_BIGINT
    for bad in ("", "²", "١٢", "-3", " 12", str(MAX_BIGINT + 1), str(HUGE)):
        assert resume_cursor(bad, 5) == 5, bad
