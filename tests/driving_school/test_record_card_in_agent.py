"""The print-record-card command end to end on the agent side: a real Mosquitto, the
agent's MQTT link and command router, its durable print queue and the escpos-net
back-end printing to the virtual printer — sent twice, printed once."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from agent.config import load_config
from agent.daemon import AgentDaemon
from agent.sync_link import build_agent_link
from simulators.virtual_printer import VirtualPrinter
from tests.cloud_harness import CloudHarness, wait_until
from tests.command_helpers import expires_soon
from tests.mqtt_broker import Broker

CARD = {"school": "Avtošola Čuk", "register_no": "2026/017", "first_name": "Žan",
        "last_name": "Šuštar", "birth_date": "2007-05-14", "category": "B",
        "instructor": "Tjaša Črnič", "required_lessons": 20, "lessons_done": 3}


def test_record_card_command_prints_once_on_the_office_printer(
        tmp_path: Path, write_config: Callable[..., Path]) -> None:
    virtual = VirtualPrinter("127.0.0.1", 0, tmp_path / "paper", paper_mm=80)
    port = virtual.start()
    broker = Broker(tmp_path / "broker").start()
    extra = (f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n\n'
             f'[[printers]]\nid = "office"\nurl = "escpos-net://127.0.0.1:{port}"\n')
    daemon = AgentDaemon(load_config(write_config(extra)))
    daemon.start()
    link = build_agent_link(daemon, daemon.config.mqtt, max_backoff_s=1.0)  # type: ignore[arg-type]
    link.start()
    cloud = CloudHarness(broker.port)
    try:
        wait_until(lambda: link.subscribed, what="link connected and subscribed")
        body = json.dumps({"v": 1, "request_id": "card-1",
                           "expires_at": expires_soon(), "args": {"card": CARD}})
        for _ in range(2):  # the office resends (or the broker redelivers)
            cloud.publish("es/v1/t1/dev1/cmd/print-record-card", body)
        results = [json.loads(cloud.wait_for(
            lambda t, p: t.endswith("/cmd-result") and json.loads(p)["request_id"] == "card-1"
        )[1]) for _ in range(2)]
        assert all(r["ok"] for r in results), results
        assert virtual.wait_for(1)
        text = virtual.receipts[0].text
        for needle in ("Žan", "Šuštar", "2026/017", "Avtošola Čuk", "Tjaša Črnič"):
            assert needle in text, needle
        queue = daemon.print_queue
        assert queue is not None
        wait_until(lambda: getattr(queue.status("record-card-card-1"), "state", None)
                   == "printed", what="job printed")
        assert len(virtual.receipts) == 1
    finally:
        link.stop()
        cloud.close()
        daemon.stop()
        broker.stop()
        virtual.stop()
