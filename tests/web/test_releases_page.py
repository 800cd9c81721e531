"""The Releases page (cloud_bridge/releases/page.py): per-device versions, a staged
rollout (a share, then all), pause and rollback, forms validated; administrators only
change anything."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cloud_bridge.db_schema import write_tx
from cloud_bridge.device_reports import store_state
from cloud_bridge.releases.signing import create_key, load_key
from cloud_bridge.releases.store import ReleaseStore
from cloud_bridge.wire import DeviceState
from tests.web.conftest import WebSite


@pytest.fixture
def releases(site: WebSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[
        tuple[str, bytes, bool]]:
    folder = tmp_path / "releases"
    monkeypatch.setenv("BRIDGE_RELEASES_DIR", str(folder))
    monkeypatch.setenv("BRIDGE_RELEASES_URL", "https://bridge.example:8443")
    create_key(tmp_path / "release.key")
    store = ReleaseStore(folder)
    for version in ("1.0.0", "1.1.0"):
        wheel = tmp_path / f"edge_suite-{version}-py3-none-any.whl"
        wheel.write_bytes(b"PK wheel " + version.encode())
        store.publish(load_key(tmp_path / "release.key"), "stable", version, [wheel],
                      f"edge-suite=={version}")
    a = site.tenants[0]
    with write_tx(site.engine) as conn:
        for i in range(10):
            store_state(conn, a, f"gate-{i}", DeviceState.model_validate({
                "v": 1, "online": True, "ts": "2026-12-03T07:00:00.000Z", "version": "1.0.0"}))
    sent: list[tuple[str, bytes, bool]] = []

    def publish(topic: str, payload: bytes, retain: bool = False) -> None:
        sent.append((topic, payload, retain))

    site.published.publish = publish  # type: ignore[method-assign]
    return sent


def offers(sent: list[tuple[str, bytes, bool]]) -> dict[str, dict[str, object]]:
    out = {}
    for topic, payload, retain in sent:
        assert retain and topic.endswith("/release")
        out[topic.split("/")[3]] = json.loads(payload)
    return out


def test_rollout_widen_pause_and_rollback(site: WebSite,
                                          releases: list[tuple[str, bytes, bool]]) -> None:
    a = site.tenants[0]
    client, csrf = site.login(site.user(a, "administrator"))
    page = client.get(f"/t/{a}/releases").text
    assert len(re.findall(r'data-version="1.0.0"', page)) == 10
    assert "1.0.0, 1.1.0" in page and f'href="/t/{a}/releases"' in page

    bad = client.post(f"/t/{a}/releases/rollout", data={
        "csrf_token": csrf, "channel": "stable", "version": "1.1.0", "percent": "0"})
    assert bad.status_code == 422 and 'id="f-percent"' in bad.text
    assert re.search(r'id="f-percent"[^>]*aria-invalid="true"', bad.text)
    unknown = client.post(f"/t/{a}/releases/rollout", data={
        "csrf_token": csrf, "channel": "stable", "version": "9.9.9", "percent": "10"})
    assert unknown.status_code == 422 and not releases

    done = client.post(f"/t/{a}/releases/rollout", follow_redirects=False, data={
        "csrf_token": csrf, "channel": "stable", "version": "1.1.0", "percent": "30"})
    assert done.status_code == 303
    first = offers(releases)
    assert len(first) == 3 and {o["version"] for o in first.values()} == {"1.1.0"}
    assert all(str(o["manifest_url"]).startswith("https://bridge.example:8443/releases/stable/")
               for o in first.values())

    client.post(f"/t/{a}/releases/widen", data={"csrf_token": csrf, "channel": "stable",
                                                 "percent": "100"})
    assert len(offers(releases)) == 10
    assert set(first) <= set(offers(releases))  # widening keeps the first devices

    client.post(f"/t/{a}/releases/pause", data={"csrf_token": csrf, "channel": "stable"})
    releases.clear()
    page = client.post(f"/t/{a}/releases/rollback", data={"csrf_token": csrf,
                                                           "channel": "stable"}).text
    back = offers(releases)
    assert len(back) == 10 and all(o["version"] == "1.0.0" and o["rollback"]
                                   for o in back.values())
    assert 'data-testid="rollout-stable"' in page


def test_reception_sees_versions_but_cannot_roll_out(
        site: WebSite, releases: list[tuple[str, bytes, bool]]) -> None:
    a = site.tenants[0]
    client, csrf = site.login(site.user(a, "reception"))
    page = client.get(f"/t/{a}/releases")
    assert page.status_code == 200 and "releases/rollout" not in page.text
    refused = client.post(f"/t/{a}/releases/rollout", data={
        "csrf_token": csrf, "channel": "stable", "version": "1.1.0", "percent": "100"})
    assert refused.status_code == 403 and not releases
    other, _ = site.login(site.user(site.tenants[1], "administrator"))
    assert "gate-0" not in other.get(f"/t/{site.tenants[1]}/releases").text
