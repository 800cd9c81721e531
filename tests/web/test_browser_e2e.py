"""End to end in headless Chromium, on SQLite and PostgreSQL: a real Mosquitto, a real
bridge serving the pages, a real ``edge-agent run``. Log in, create a plan and a member,
sell the plan, issue a card; the signed changes reach the agent; a simulated tap (the
agent's control socket) appears live; open the gate from the fleet page and see the
agent pulse it. Screenshots go to $TEST_ARTIFACTS."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine, select

from agent.control_client import ControlClient
from cloud_bridge.db_schema import tenants
from cloud_bridge.mqtt_link import MqttSettings
from cloud_bridge.service import Bridge, BridgeSettings
from cloud_bridge.tenant_keys import TenantKeyStore, create_tenant
from cloud_bridge.web.auth import WebAuth
from tests.agent_process import AgentProcess
from tests.browser import chromium
from tests.cloud_harness import wait_until
from tests.conftest import config_text
from tests.mqtt_broker import Broker, free_port, wait_for_port

UID = "04A1B2C3D4E5F6"
PASSWORD = "browser test password"


@dataclass
class LiveSite:
    base: str
    tenant: str
    username: str
    agent: AgentProcess
    control: ControlClient
    engine: Engine


@pytest.fixture
def live_site(engine: Engine, db_url: str, tmp_path: Path) -> Iterator[LiveSite]:
    tenant = f"gym{uuid.uuid4().hex[:8]}"
    keys_dir = tmp_path / "keys"
    create_tenant(keys_dir, tenant)
    keys = TenantKeyStore(keys_dir).get(tenant)
    broker = Broker(tmp_path / "broker").start()
    bridge = Bridge(BridgeSettings(db_url=db_url, keys_dir=keys_dir, mqtt=MqttSettings(
        port=broker.port, client_id=f"bridge-{uuid.uuid4().hex[:8]}")), engine=engine).start()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(bridge.app("token-0123456789", secure_cookies=False),
                                           host="127.0.0.1", port=port, log_level="warning"))
    http = threading.Thread(target=server.run, daemon=True)
    http.start()
    wait_for_port(port)
    username = f"admin-{uuid.uuid4().hex[:6]}@{tenant}.si"
    WebAuth(engine).create_user(tenant, username, PASSWORD, "administrator")
    cfg = tmp_path / "agent.toml"
    text = config_text(tmp_path / "data", keys.hmac_key, keys.public_key_raw,
                       f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n')
    cfg.write_text(text.replace('tenant = "t1"', f'tenant = "{tenant}"'))
    agent = AgentProcess(cfg, tmp_path / "agent.log")
    try:
        yield LiveSite(f"http://127.0.0.1:{port}", tenant, username, agent,
                       ControlClient(agent.socket), engine)
    finally:
        agent.stop()
        server.should_exit = True
        http.join(10)
        bridge.stop()
        broker.stop()


def bridge_version(site: LiveSite) -> int:
    with site.engine.connect() as conn:
        return int(conn.execute(select(tenants.c.version).where(
            tenants.c.tenant == site.tenant)).scalar() or 0)


def watch_pulses(control: ControlClient, seen: list[dict[str, Any]]) -> None:
    try:
        for item in control.watch():
            if item.get("kind") == "pulse":
                seen.append(item)
    except Exception:  # the agent stops at the end of the test
        return


@pytest.mark.browser_on_postgresql
def test_staff_sell_a_pass_see_the_tap_live_and_open_the_gate(
        live_site: LiveSite, artifacts_dir: Path, db_url: str) -> None:
    site = live_site
    shot_prefix = f"web-{'pg' if db_url.startswith('postgresql') else 'sqlite'}"
    t = f"{site.base}/t/{site.tenant}"
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)

        def shot(name: str) -> None:
            page.screenshot(path=str(artifacts_dir / f"{shot_prefix}-{name}.png"), full_page=True)

        page.goto(f"{site.base}/login")
        page.fill("#username", site.username)
        page.fill("#password", "wrong password!")
        page.click("button[type=submit]")
        assert "Napačno uporabniško ime ali geslo" in page.text_content("main")
        page.fill("#username", site.username)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{t}/fleet")
        page.wait_for_selector("table.devices td.online")  # the agent's retained state
        shot("01-fleet")

        page.goto(f"{t}/plans")
        page.fill("#f-name", "Mesečna")
        page.select_option("#f-kind", "membership")
        page.fill("#f-duration_days", "30")
        page.fill("#f-price", "39,90")
        page.fill("#f-zones", "main")
        page.click("#new-plan button[type=submit]")
        page.wait_for_selector("table.plans td:has-text('Mesečna')")
        shot("02-plan")

        page.goto(f"{t}/members/new")
        page.fill("#f-first_name", "Ana")
        page.fill("#f-last_name", "Novak")
        page.click("#new-member button[type=submit]")
        page.wait_for_selector("text=Član je dodan.")
        page.click("#add-from-plan button[type=submit]")
        page.wait_for_selector("text=Pravica je dodana.")
        page.fill("#issue-card input[name=uid]", UID)
        page.click("#issue-card button[type=submit]")
        page.wait_for_selector("table.credentials td:has-text('Kartica')")
        shot("03-member")

        # the three changes reach the agent as signed batches
        wait_until(lambda: site.control.request("status").get("membership_version")
                   == bridge_version(site) == 3, timeout=20, what="agent applied v3")

        page.goto(f"{t}/live")
        page.wait_for_selector("#live-state:has-text('v živo')")
        granted = site.control.request("present", reader="entry", kind="uid", value=UID)
        assert granted["granted"], granted
        page.wait_for_selector("#live-rows tr:has-text('Ana Novak') td.granted")
        denied = site.control.request("present", reader="entry", kind="uid",
                                      value="04DEADBEEF0001")
        assert not denied["granted"]
        page.wait_for_selector("#live-rows tr:has-text('ni izdana') td.denied")
        page.wait_for_function("document.getElementById('fig-denied').textContent === '1'")
        shot("04-live")

        pulses: list[dict[str, Any]] = []
        threading.Thread(target=watch_pulses, args=(site.control, pulses), daemon=True).start()
        time.sleep(0.3)  # the watch is subscribed before the command goes out
        page.goto(f"{t}/fleet")
        page.click("table.devices button:has-text('Odpri g1')")
        page.wait_for_selector("table.commands tr:has-text('Odpri vrata') td.result .ok")
        assert "pulsed=True" in page.text_content("table.commands")
        wait_until(lambda: any(p.get("remote") and p.get("gate") == "g1" for p in pulses),
                   timeout=10, what="the agent pulsed gate g1")
        shot("05-gate-opened")

        page.goto(f"{t}/live")  # the remote open is an event like any passage
        page.wait_for_selector("#live-rows td:has-text('Odprto na daljavo')")
        page.goto(f"{t}/stats")
        page.wait_for_selector("svg.chart rect.granted", state="attached")
        tallest = page.evaluate("Math.max(...[...document.querySelectorAll("
                                "'svg.chart rect.granted')].map(r => r.height.baseVal.value))")
        assert tallest > 0  # today's granted entry is drawn
        shot("06-stats")

        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.context.add_cookies(page.context.cookies())
        phone.goto(f"{t}/members?q=nov")
        phone.wait_for_selector("table.members a:has-text('Novak Ana')")
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the members page scrolls sideways on a phone ({width}px)"
        phone.screenshot(path=str(artifacts_dir / f"{shot_prefix}-07-phone-members.png"),
                         full_page=True)
