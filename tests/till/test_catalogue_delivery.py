"""The till catalogue from the bridge, with real peers: Mosquitto, the bridge (its staff
page and its publisher), and an ``edge-agent run`` process with ``[pos.till]`` and no
catalogue file. A product added on the page reaches the till's /till/api/catalogue in
seconds; a forged catalogue and an older one are refused and reported in the device's
state while the till keeps its version; with the broker stopped the till still sells on
its last version, and takes the newer one when the broker is back."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import tomli_w
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from agent.control_client import ControlClient
from cloud_bridge.catalogue.envelope import catalogue_envelope
from cloud_bridge.mqtt_link import MqttSettings
from cloud_bridge.service import Bridge, BridgeSettings
from cloud_bridge.tenant_keys import TenantKeys, create_tenant
from cloud_bridge.web.auth import WebAuth
from contracts.pin_hash import hash_pin
from contracts.signed_envelope import sign_payload
from contracts.till_catalogue import CataloguePayload, CatalogueProduct
from contracts.topics import till_catalogue_topic
from simulators.furs_endpoint import FursSimulator, SimPki
from tests.agent_process import AgentProcess
from tests.cloud_harness import wait_until
from tests.mqtt_broker import Broker, free_port
from tests.pos.conftest import pos_table
from tests.web.conftest import PASSWORD, login_token

TENANT = "t1"


@dataclass
class Shop:
    broker: Broker
    bridge: Bridge
    web: TestClient
    csrf: str
    agent: AgentProcess
    till: httpx.Client
    keys: TenantKeys

    def add(self, **fields: str) -> int:
        """A product added on the bridge's page; the catalogue version it made."""
        reply = self.web.post(f"/t/{TENANT}/catalogue", data={"csrf_token": self.csrf,
                                                               **fields},
                              follow_redirects=False)
        assert reply.status_code == 303, reply.text[-800:]
        return int(reply.headers["location"].rsplit("saved=", 1)[1])

    def catalogue(self) -> dict[str, Any]:
        token = self.till.post("/till/api/signin", json={"cashier": "11", "pin": "2468"}
                               ).json()["token"]
        reply = self.till.get("/till/api/catalogue", headers={"X-Till-Session": token})
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    def names(self) -> set[str]:
        return {p["name"] for p in self.catalogue()["products"]}

    def sell(self, product: str, key: str) -> httpx.Response:
        token = self.till.post("/till/api/signin", json={"cashier": "11", "pin": "2468"}
                               ).json()["token"]
        return self.till.post("/till/api/sale", headers={"X-Till-Session": token}, json={
            "idempotency_key": key, "payment": {"method": "card"},
            "lines": [{"product": product, "quantity": "1"}]})

    def reported(self) -> dict[str, Any]:
        status = ControlClient(self.agent.socket, timeout=10).request("status")
        return dict(status["till_catalogue"])

    def retain(self, payload: bytes) -> None:
        """Publish on the tenant's catalogue topic as a stranger would (retained)."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="stranger")
        client.connect("127.0.0.1", self.broker.port)
        client.loop_start()
        client.publish(till_catalogue_topic("es/v1", TENANT), payload, qos=1,
                       retain=True).wait_for_publish(5)
        client.loop_stop()
        client.disconnect()


def agent_config(tmp: Path, created: Any, broker_port: int, http_port: int,
                 pki: SimPki, furs_url: str) -> Path:
    pos = pos_table(pki, furs_url)
    del pos["http"]
    pos["till"] = {"catalogue_file": str(tmp / "till" / "catalogue.json"),
                   "cashiers": [{"id": "11", "name": "Ana", "tax_number": 87654321,
                                 "pin_hash": hash_pin("2468")}]}
    (tmp / "till").mkdir()
    config = {"tenant": TENANT, "device": "till1", "site": "s1", "data_dir": str(tmp / "data"),
              "keys": {"credential_hmac_key": f"file:{created.hmac_key_path}",
                       "tenant_public_key": f"base64:{created.public_key_b64}"},
              "mqtt": {"host": "127.0.0.1", "port": broker_port},
              "local_http": {"bind": "127.0.0.1", "port": http_port},
              "printers": [{"id": "receipt", "url": "sim:"}], "pos": pos}
    path = tmp / "agent.toml"
    path.write_text(tomli_w.dumps(config))
    return path


@pytest.fixture
def shop(tmp_path: Path, furs: FursSimulator, furs_pki: SimPki) -> Iterator[Shop]:
    keys_dir = tmp_path / "keys"
    created = create_tenant(keys_dir, TENANT)
    created.hmac_key_path.chmod(0o600)
    broker = Broker(tmp_path / "broker").start()
    bridge = Bridge(BridgeSettings(db_url=f"sqlite:///{tmp_path / 'bridge.sqlite3'}",
                                   keys_dir=keys_dir,
                                   mqtt=MqttSettings(port=broker.port,
                                                     client_id=f"bridge-{secrets.token_hex(3)}")))
    bridge.catalogues.refresh_s = 0.3
    bridge.start()
    web = TestClient(bridge.app("api-token-0123456789", secure_cookies=False))
    user = "manager@t1.si"
    WebAuth(bridge.engine).create_user(TENANT, user, PASSWORD, "administrator")
    reply = web.post("/login", data={"username": user, "password": PASSWORD,
                                     "csrf_token": login_token(web)}, follow_redirects=False)
    assert reply.status_code == 303
    page = web.get(f"/t/{TENANT}/catalogue")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    http_port = free_port()
    config = agent_config(tmp_path, created, broker.port, http_port, furs_pki, furs.url)
    agent = AgentProcess(config, tmp_path / "agent.log")
    till = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=10)
    s = Shop(broker, bridge, web, csrf.group(1), agent, till, bridge.keys.get(TENANT))
    try:
        yield s
    finally:
        till.close()
        agent.stop()
        bridge.stop()
        broker.stop()


def test_products_from_the_page_reach_the_till_and_survive_the_broker(shop: Shop) -> None:
    assert shop.catalogue() == {"version": 0, "products": []}  # installed without a file
    added = time.monotonic()
    assert shop.add(name="Kava z mlekom", price="1,80", vat="9.5", category="Pijače",
                    barcode="3830001234567") == 1
    wait_until(lambda: shop.catalogue()["version"] == 1, 10, "version 1 at the till")
    assert time.monotonic() - added < 5
    (kava,) = shop.catalogue()["products"]
    assert kava | {"id": "x"} == {"id": "x", "name": "Kava z mlekom", "price_cents": 180,
                                  "vat": "9.5", "vat_label": "9,5 %", "category": "Pijače",
                                  "barcode": "3830001234567"}
    assert shop.add(name="Revija Fitnes", price="3,50", vat="5", category="Tisk") == 2
    wait_until(lambda: shop.catalogue()["version"] == 2, 10, "version 2 at the till")
    wait_until(lambda: shop.reported()["version"] == 2, 10, "version 2 in the state")

    # a forged catalogue (another key) and an older one (the tenant's own version 1)
    forged = sign_payload(Ed25519PrivateKey.generate(), CataloguePayload(
        tenant=TENANT, version=99, products=[CatalogueProduct(
            id="x", name="Zastonj", price="0.01", vat="22")]).model_dump(mode="json"))
    shop.retain(forged)
    wait_until(lambda: "refused" in (shop.reported()["rejected"] or ""), 10,
               "the forged catalogue reported")
    shop.retain(catalogue_envelope(shop.keys, 1, []))
    wait_until(lambda: "not newer than version 2" in (shop.reported()["rejected"] or ""),
               10, "the older catalogue reported")
    assert shop.catalogue()["version"] == 2
    assert shop.names() == {"Kava z mlekom", "Revija Fitnes"}
    log = shop.agent.log_text()
    assert "till keeps selling on version 2" in log

    # broker away: the till sells on version 2; a change made meanwhile waits
    shop.broker.stop()
    assert shop.add(name="Brisača", price="12,90", vat="22", category="Oprema") == 3
    sale = shop.sell(kava["id"], "offline-sale-0001")
    assert sale.status_code == 200, sale.text
    assert sale.json()["total"] == "1.80"
    assert shop.catalogue()["version"] == 2
    # the broker back (it forgot the retained message): the bridge publishes again
    shop.broker.start()
    wait_until(lambda: shop.catalogue()["version"] == 3, 30, "version 3 after the outage")
    assert "Brisača" in shop.names()
    assert shop.reported()["rejected"] is None  # a newer good version clears it
