"""Issue 14, item 9: a remote "open" must not fire long after it was sent. Every part is
a real process — Mosquitto, ``cloud-bridge serve``, ``edge-agent run`` with a sim gate.
The bridge sends ``open`` while the agent is away (stopped, its persistent MQTT session
queueing the command; or frozen with SIGSTOP, the command sitting in its socket); the
agent comes back after the expiry: no pulse, no remote-open event, the result
``expired`` stored by the bridge and shown on the fleet page."""

from __future__ import annotations

import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloud_bridge.mqtt_link import MqttSettings
from cloud_bridge.service import Bridge, BridgeSettings
from cloud_bridge.web.auth import WebAuth
from cloud_bridge.web.session_routes import LOGIN_CSRF_COOKIE
from tests.cloud_harness import wait_until
from tests.e2e.site import TENANT, Site

OPEN_LIFETIME_S = 3  # the bridge's setting for physical actions in this test
PASSWORD = "a long test password"


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bridge.sqlite3'}"
    else:
        url = str(request.getfixturevalue("pg_url"))
    s = Site(tmp_path, url, bridge_args=("--cmd-expiry-physical", str(OPEN_LIFETIME_S)))
    yield s
    s.close()


def pulses(site: Site) -> str:
    """The sim gate's own count of pulses in this agent process."""
    [gate] = [p for p in site.status()["peripherals"] if p["id"] == "g1"]
    return str(gate["detail"])


def device_online(site: Site) -> bool:
    reply = site.api.get(f"/devices/{site.device}")
    return reply.status_code == 200 and bool(reply.json()["online"])


def send_open(site: Site) -> dict[str, Any]:
    reply = site.api.post(f"/devices/{site.device}/commands",
                          json={"name": "open", "args": {"gate": "g1"}})
    assert reply.status_code == 202, reply.text
    sent = dict(reply.json())
    # the bridge stamped the configured lifetime for a physical action
    assert 0 < sent["expires_at"] - time.time() * 1000 <= OPEN_LIFETIME_S * 1000
    return sent


def answer(site: Site, request_id: str, timeout: float = 30) -> dict[str, Any]:
    url = f"/commands/{request_id}"
    wait_until(lambda: site.api.get(url).json()["answered"], timeout,
               f"the device's answer to {request_id}", every=0.2)
    return dict(site.api.get(url).json())


def sleep_past(expires_at_ms: int) -> None:
    time.sleep(max(0.0, expires_at_ms / 1000 - time.time()) + 1.0)


def fleet_page(site: Site) -> str:
    """The fleet page, rendered by the bridge's web module over the bridge's database."""
    settings = BridgeSettings(db_url=site.db_url, keys_dir=site.keys_dir,
                              mqtt=MqttSettings(client_id=f"page-{uuid.uuid4().hex[:8]}"))
    bridge = Bridge(settings, engine=site.engine)  # never started: only its pages
    auth = WebAuth(site.engine, secure_cookies=False)
    user = f"admin-{uuid.uuid4().hex[:8]}@{TENANT}.si"
    auth.create_user(TENANT, user, PASSWORD, "administrator")
    with TestClient(bridge.app("unused-token", secure_cookies=False)) as client:
        client.get("/login")
        token = client.cookies.get(LOGIN_CSRF_COOKIE, path="/login")
        r = client.post("/login", data={"username": user, "password": PASSWORD,
                                        "csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303, r.text
        return str(client.get(f"/t/{TENANT}/fleet").text)


def outcome_on_page(page: str, request_id: str) -> str:
    found = re.search(rf'data-request="{request_id}" data-outcome="(\w+)"', page)
    assert found, f"command {request_id} is not on the fleet page"
    return found.group(1)


def test_open_sent_while_the_agent_is_away_expires_instead_of_opening_late(
        site: Site) -> None:
    wait_until(lambda: device_online(site), 30, "the agent's retained state: online")
    site.agent.stop()  # link gone; its persistent session on the broker queues commands
    wait_until(lambda: not device_online(site), 30, "the bridge saw the agent go offline")
    page = fleet_page(site)
    row = page.split(f'data-device="{site.device}"')[1].split("</tr>")[0]
    assert "Odpri g1" not in row and "Naprava ni povezana" in row  # not offered offline

    stale = send_open(site)  # the JSON API still sends; the expiry protects the gate
    sleep_past(stale["expires_at"])
    site.agent = site.start_agent()  # the link returns after the expiry
    got = answer(site, stale["request_id"])
    assert got["ok"] is False and got["error"] == "expired" and got["outcome"] == "expired"
    assert got["result"]["device_time"] > got["expires_at"] == stale["expires_at"]
    assert pulses(site) == "simulated, 0 pulses"

    # the control: an open sent while the agent is there does pulse
    fresh = send_open(site)
    done = answer(site, fresh["request_id"])
    assert done["ok"] is True and done["result"]["pulsed"] is True
    assert pulses(site) == "simulated, 1 pulses"

    # frozen (SIGSTOP): the broker still thinks it is connected and hands the command
    # over; the agent reads it only after the expiry
    site.agent.proc.send_signal(signal.SIGSTOP)
    try:
        frozen = send_open(site)
        sleep_past(frozen["expires_at"])
    finally:
        site.agent.proc.send_signal(signal.SIGCONT)
    assert answer(site, frozen["request_id"])["error"] == "expired"
    assert pulses(site) == "simulated, 1 pulses"

    site.wait_drained()
    remote_opens = [d for _, kind, d in site.stored() if kind == "access.remote_open"]
    assert [d["request_id"] for d in remote_opens] == [fresh["request_id"]]
    page = fleet_page(site)
    assert outcome_on_page(page, stale["request_id"]) == "expired"
    assert outcome_on_page(page, frozen["request_id"]) == "expired"
    assert outcome_on_page(page, fresh["request_id"]) == "ok"
    row = page.split(f'data-device="{site.device}"')[1].split("</tr>")[0]
    assert "Odpri g1" in row  # online again: the action is offered again
