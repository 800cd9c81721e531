"""POS inside the running agent: print and reprint commands over a real Mosquitto, the
receipt list over the control socket, and a resent command that must not number twice."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import tomli_w

from agent.config import load_config
from agent.control_client import ControlClient
from agent.control_socket import ControlServer
from agent.daemon import AgentDaemon
from agent.sync_link import build_agent_link
from simulators.furs_endpoint import FursSimulator, SimPki
from tests.cloud_harness import CloudHarness, wait_until
from tests.command_helpers import expires_soon
from tests.mqtt_broker import Broker
from tests.pos.conftest import job, pos_table


@pytest.fixture
def agent(tmp_path: Path, write_config: Callable[..., Path], furs: FursSimulator,
          furs_pki: SimPki) -> Iterator[tuple[AgentDaemon, CloudHarness, Path]]:
    broker = Broker(tmp_path / "broker").start()
    pos = pos_table(furs_pki, furs.url)
    del pos["http"]
    extra = (f"[mqtt]\nhost = \"127.0.0.1\"\nport = {broker.port}\n\n"
             + tomli_w.dumps({"pos": pos})
             + '\n[[printers]]\nid = "receipt"\nurl = "sim:"\n')
    daemon = AgentDaemon(load_config(write_config(extra)))
    daemon.start()
    socket_path = tmp_path / "control.sock"
    control = ControlServer(socket_path, daemon)
    control.start()
    link = build_agent_link(daemon, daemon.config.mqtt, ack_timeout_s=1.0,  # type: ignore[arg-type]
                     state_interval_s=3600, max_backoff_s=1.0)
    link.start()
    cloud = CloudHarness(broker.port)
    wait_until(lambda: link.subscribed, what="link connected and subscribed")
    yield daemon, cloud, socket_path
    link.stop()
    cloud.close()
    control.close()
    daemon.stop()
    broker.stop()


def test_print_reprint_and_resent_command_over_mqtt(
        agent: tuple[AgentDaemon, CloudHarness, Path]) -> None:
    daemon, cloud, socket_path = agent
    printer = daemon.printers["receipt"]

    def command(name: str, request_id: str, args: dict) -> dict:
        cloud.publish(f"es/v1/t1/dev1/cmd/{name}",
                      json.dumps({"v": 1, "request_id": request_id,
                                  "expires_at": expires_soon(), "args": args}))
        _, payload = cloud.wait_for(
            lambda t, p: t.endswith("/cmd-result") and json.loads(p)["request_id"] == request_id)
        return json.loads(payload)

    first = command("print", "p1", job("sale-0042"))
    assert first["ok"], first
    receipt = first["result"]
    assert receipt["invoice_id"] == "P1-BLAG1-1" and receipt["eor"]
    assert receipt["print_state"] == "printed"
    assert len(printer.jobs) == 1  # type: ignore[attr-defined]

    again = command("print", "p2", job("sale-0042"))  # the office resent the same sale
    assert again["ok"] and again["result"]["duplicate"]
    assert again["result"]["invoice_id"] == "P1-BLAG1-1"
    assert len(printer.jobs) == 1  # type: ignore[attr-defined]

    copy = command("reprint", "p3", {"invoice_id": "P1-BLAG1-1"})
    assert copy["ok"] and copy["result"]["copies"] == 1
    assert len(printer.jobs) == 2  # type: ignore[attr-defined]

    bad = command("print", "p4", {"idempotency_key": "x"})
    assert not bad["ok"] and "idempotency_key" in bad["error"]
    missing = command("reprint", "p5", {"invoice_id": "P1-BLAG1-999"})
    assert not missing["ok"] and "P1-BLAG1-999" in missing["error"]

    listing = ControlClient(socket_path).request("receipts", limit=10)
    assert [r["invoice_id"] for r in listing["receipts"]] == ["P1-BLAG1-1"]
    assert listing["summary"]["last_number"] == 1
    # the receipt event reached the office once, as an outbox event
    wait_until(lambda: any(e["type"].startswith("pos.") for e in cloud.events.values()),
               what="receipt event delivered")


def test_device_without_pos_answers_print_with_an_error(
        tmp_path: Path, write_config: Callable[..., Path]) -> None:
    broker = Broker(tmp_path / "broker").start()
    try:
        daemon = AgentDaemon(load_config(write_config(
            f"[mqtt]\nhost = \"127.0.0.1\"\nport = {broker.port}\n")))
        daemon.start()
        link = build_agent_link(daemon, daemon.config.mqtt, max_backoff_s=1.0)  # type: ignore[arg-type]
        link.start()
        cloud = CloudHarness(broker.port)
        wait_until(lambda: link.subscribed, what="link connected and subscribed")
        cloud.publish("es/v1/t1/dev1/cmd/print",
                      json.dumps({"v": 1, "request_id": "x1",
                                  "expires_at": expires_soon(), "args": job()}))
        _, payload = cloud.wait_for(lambda t, p: t.endswith("/cmd-result"))
        result = json.loads(payload)
        assert not result["ok"] and "no [pos] table" in result["error"]
        link.stop()
        cloud.close()
        daemon.stop()
    finally:
        broker.stop()
