"""Remote configuration end to end, every part a real process (Mosquitto, ``cloud-bridge
serve``, ``edge-agent run``): a desired config set through the API reaches the device
signed, is applied and reported; one that cannot start is rolled back with the reason;
a forged one is refused; secrets in clear never get stored; a kill -9 in the middle of
an apply leaves a device that starts with the config it ran before; the page shows the
drift."""

from __future__ import annotations

import json
import re
import tomllib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from cloud_bridge.web.auth import WebAuth
from cloud_bridge.web.session_routes import LOGIN_CSRF_COOKIE
from contracts.remote_config import desired_payload
from contracts.signed_envelope import sign_payload
from contracts.topics import device_config_topic
from tests.cloud_harness import wait_until
from tests.e2e.site import TENANT, Site

PASSWORD = "a long test password"


def desired(*readers: dict[str, Any]) -> dict[str, Any]:
    return {"site": "s1", "site_policy": {"anti_passback": False},
            "gates": [{"id": "g1", "url": "sim:", "zone": "main"}],
            "readers": [{"id": "entry", "url": "sim:", "gate": "g1", "direction": "in"},
                        *readers]}


EXIT = {"id": "exit", "url": "sim:", "gate": "g1", "direction": "out"}
BROKEN = {"id": "door2", "url": "serial:/nonexistent/tty-remote-config", "gate": "g1"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("rconf")
    mp = pytest.MonkeyPatch()
    mp.setenv("EDGE_AGENT_CONFIG_DEADLINE_S", "3")  # the broken reader's rollback: 3 s
    s = Site(tmp, f"sqlite:///{tmp / 'bridge.sqlite3'}")
    yield s
    s.close()
    mp.undo()


def put(site: Site, config: dict[str, Any]) -> httpx.Response:
    return site.api.put(f"/devices/{site.device}/config", json={"config": config})


def drift(site: Site) -> dict[str, Any]:
    reply = site.api.get(f"/devices/{site.device}/config")
    assert reply.status_code == 200, reply.text
    return dict(reply.json()["drift"])


def reported(site: Site) -> dict[str, Any]:
    reply = site.api.get(f"/devices/{site.device}")
    state = reply.json().get("state") or {} if reply.status_code == 200 else {}
    return dict(state.get("config") or {})


def cookie_from(reply: httpx.Response, name: str) -> str:
    for header in reply.headers.get_list("set-cookie"):
        key, _, rest = header.partition("=")
        if key.strip() == name:
            return rest.split(";", 1)[0]
    raise AssertionError(f"no {name} cookie in {reply.headers}")


def readers_running(site: Site) -> set[str]:
    return {p["id"] for p in site.status()["peripherals"] if p["role"] == "reader"}


def test_secrets_in_clear_and_device_local_sections_are_refused(site: Site) -> None:
    clear = {**desired(), "keys": {"credential_hmac_key": "base64:" + "QUFB" * 8}}
    reply = put(site, clear)
    assert reply.status_code == 422
    assert "keys.credential_hmac_key: a secret in clear" in reply.json()["detail"]
    assert "QUFB" not in reply.text
    reply = put(site, {**desired(), "mqtt": {"host": "evil.example", "password": "x"}})
    assert reply.status_code == 422 and "mqtt: the broker connection" in reply.text
    reply = put(site, desired({"id": "x", "url": "sim:", "gate": "nope"}))
    assert reply.status_code == 422 and "readers[1].gate: 'nope' is not a gate id" in reply.text
    assert site.api.get(f"/devices/{site.device}/config").status_code == 404  # none stored


def test_a_desired_config_is_applied_and_reported(site: Site) -> None:
    reply = put(site, desired(EXIT))
    assert reply.status_code == 201, reply.text
    assert reply.json()["version"] == 1
    wait_until(lambda: drift(site)["status"] == "in_sync", 30, "version 1 applied")
    assert drift(site) | {"reason": None} == {
        "device": site.device, "desired_version": 1, "applied_version": 1, "drift": False,
        "status": "in_sync", "reason": None}
    assert readers_running(site) == {"entry", "exit"}
    text = site.config.read_text()
    assert text.startswith("# written by edge-agent from the bridge's desired config version 1")
    on_disk = tomllib.loads(text)
    # the device kept its own keys (a key file) and its broker connection
    assert on_disk["keys"]["credential_hmac_key"].startswith("file:")
    assert on_disk["mqtt"]["port"] == site.broker.port
    assert "exit" in {r["id"] for r in on_disk["readers"]}
    assert (site.config.parent / "agent.toml.previous").exists()


def test_a_config_that_cannot_start_is_rolled_back(site: Site) -> None:
    assert put(site, desired(EXIT, BROKEN)).json()["version"] == 2
    wait_until(lambda: drift(site)["status"] == "rolled_back", 40, "version 2 rolled back")
    d = drift(site)
    assert d["drift"] is True and d["desired_version"] == 2 and d["applied_version"] == 1
    assert "reader door2" in d["reason"] and "/nonexistent/tty-remote-config" in d["reason"]
    assert "serial:" not in site.config.read_text()  # the file is version 1 again
    assert readers_running(site) == {"entry", "exit"}
    # the daemon still decides after the rollback (an unknown card, through v1's reader)
    decision = site.control().request("present", reader="exit", kind="uid",
                                      value="04AABBCCDD")
    assert decision["reason"] == "unknown_credential" and not decision["granted"]


def test_a_forged_config_is_refused(site: Site) -> None:
    before = site.config.read_bytes()
    forged = sign_payload(Ed25519PrivateKey.generate(), desired_payload(
        TENANT, site.device, 99, 0, desired(EXIT, {"id": "evil", "url": "sim:",
                                                   "gate": "g1"})))
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"forger-{uuid.uuid4().hex}",
                         protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", site.broker.port)
    client.loop_start()
    try:
        client.publish(device_config_topic("es/v1", TENANT, site.device), forged,
                       qos=1).wait_for_publish(10)
        wait_until(lambda: reported(site).get("rejected"), 20, "forgery refused")
    finally:
        client.loop_stop()
        client.disconnect()
    state = reported(site)
    assert "signature does not verify" in state["rejected"]
    # the outcome of the last real apply is still there, beside the refusal
    assert state["applied_version"] == 1 and state["status"] == "rolled_back"
    assert drift(site)["status"] == "rolled_back" and "door2" in drift(site)["reason"]
    assert site.config.read_bytes() == before
    assert "evil" not in readers_running(site)


def test_the_page_shows_the_drift(site: Site) -> None:
    username = f"admin-{uuid.uuid4().hex[:6]}@{TENANT}.si"
    WebAuth(site.engine).create_user(TENANT, username, PASSWORD, "administrator")
    # the bridge sets Secure cookies (it expects TLS in front), which httpx keeps to
    # https: they are carried by hand over this loopback http
    with httpx.Client(base_url=f"http://127.0.0.1:{site.http_port}", timeout=30) as web:
        form = web.get("/login")
        login_cookie = cookie_from(form, LOGIN_CSRF_COOKIE)
        reply = web.post("/login", data={"username": username, "password": PASSWORD,
                                         "csrf_token": login_cookie},
                         headers={"cookie": f"{LOGIN_CSRF_COOKIE}={login_cookie}"})
        assert reply.status_code == 303, reply.text[:500]
        session = cookie_from(reply, "es_session")
        page = web.get(f"/t/{TENANT}/device-config",
                       headers={"cookie": f"es_session={session}", "accept-language": "sl"})
    assert page.status_code == 200
    row = re.search(rf'<tr data-device="{site.device}" data-drift="(yes|no)">(.*?)</tr>',
                    page.text, re.S)
    assert row is not None, page.text[:2000]
    assert row.group(1) == "yes"
    assert "door2" in row.group(2) and "/nonexistent/tty-remote-config" in row.group(2)
    assert "Nastavitve naprav" in page.text or "Device configuration" in page.text


@pytest.mark.parametrize(("version", "point"), [(3, "config.pending"),
                                                (4, "config.written")])
def test_kill_during_apply_starts_with_the_previous_config(site: Site, version: int,
                                                           point: str) -> None:
    """kill -9 after the version is marked pending (old file still in place) and after the
    new file replaced the old one: either way the device starts with version 1."""
    site.agent.stop()
    site.agent = site.start_agent(env={"EDGE_AGENT_FAULT": f"{point}:1"})
    assert put(site, desired()).json()["version"] == version  # without the exit reader
    assert site.agent.proc.wait(30) == -9  # killed itself at the point
    site.agent.stop()
    first_line = site.config.read_text().splitlines()[0]
    assert f"version {version if point == 'config.written' else 1};" in first_line
    site.agent = site.start_agent()  # recovery puts version 1 back before reading it
    assert readers_running(site) == {"entry", "exit"}
    assert "version 1;" in site.config.read_text().splitlines()[0]
    # the killed agent's last state said "applying"; the new one reports the outcome
    wait_until(lambda: reported(site).get("status") == "rolled_back"
               and reported(site).get("attempted_version") == version, 20, "the report")
    state = reported(site)
    assert state["applied_version"] == 1
    assert f"stopped while applying version {version}" in state["reason"]
    journal = json.loads((site.config.parent / "agent.toml.apply.json").read_text())
    assert journal["pending"] is None


def test_a_later_version_is_applied_after_the_failures(site: Site) -> None:
    assert put(site, desired()).json()["version"] == 5
    wait_until(lambda: drift(site)["status"] == "in_sync", 30, "version 5 applied")
    assert readers_running(site) == {"entry"}
    assert drift(site)["applied_version"] == 5
