"""/metrics and /healthz of a real `edge-agent run` connected to a real broker: decision
latency and reasons from the live feed, outbox, sync, membership and peripheral gauges;
plus the provider hook that agent/pos uses for its gauges."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.metrics import AgentMetrics, parse_listen
from tests.agent_process import AgentProcess, edge_sim
from tests.cloud_harness import CloudHarness
from tests.mqtt_broker import Broker, free_port


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def healthz(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


def test_agent_metrics_and_health_endpoint(
    write_config: Callable[..., Path], tmp_path: Path, broker: Broker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    monkeypatch.setenv("EDGE_AGENT_METRICS", f"127.0.0.1:{port}")
    cloud = CloudHarness(broker.port, auto_ack=False)
    config = write_config(f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n',
                          gates=None)
    agent = AgentProcess(config, tmp_path / "agent.log")
    try:
        assert edge_sim("members", "--count", "20", "--json", config=config).returncode == 0
        for args in (("--member", "5"), ("04DEADBEEF0001",), ("04DEADBEEF0002",)):
            assert edge_sim("tap", *args, "--json", config=config).returncode == 0
        cloud.wait_for(lambda t, p: t.endswith("/events"))
        m = scrape(port)
        assert m["edge_decisions_total"][(("gate", "g1"), ("reason", "granted"))] == 1
        assert m["edge_decisions_total"][(("gate", "g1"), ("reason", "unknown_credential"))] == 2
        assert m["edge_decision_latency_seconds_count"][(("gate", "g1"),)] == 3
        assert m["edge_decision_latency_seconds_bucket"][(("gate", "g1"), ("le", "0.1"))] == 3
        assert m["edge_outbox_depth"][()] == 3
        assert m["edge_outbox_last_seq"][()] == 3
        assert m["edge_outbox_oldest_age_seconds"][()] >= 0
        assert m["edge_sync_connected"][()] == 1
        assert m["edge_sync_acked_seq"][()] == 0
        assert "edge_sync_last_ack_age_seconds" not in m  # no ack yet
        assert m["edge_peripheral_health"][(("peripheral", "entry"), ("role", "reader"))] == 2
        assert len(m["edge_peripheral_health"]) == 6
        assert m["edge_disk_alarm"][()] == 0 and m["edge_disk_free_bytes"][()] > 0
        assert m["edge_membership_version"][()] == 0
        assert "edge_print_queue_jobs" not in m  # no POS on this device

        cloud.ack("dev1", 3)
        for _ in range(50):
            m = scrape(port)
            if m["edge_outbox_depth"][()] == 0 and "edge_sync_last_ack_age_seconds" in m:
                break
            time.sleep(0.1)
        assert m["edge_outbox_depth"][()] == 0 and m["edge_sync_acked_seq"][()] == 3
        assert 0 <= m["edge_sync_last_ack_age_seconds"][()] < 10
        assert m["edge_outbox_oldest_age_seconds"][()] == 0

        code, body = healthz(port)
        assert code == 200 and body["status"] == "ok", body
        assert {c["name"] for c in body["checks"]} == {"decision_path", "peripherals",
                                                       "mqtt_link"}
        assert m["edge_healthy"][()] == 1
    finally:
        agent.stop()
        cloud.client.loop_stop()
        cloud.client.disconnect()
    assert "GET /metrics" not in agent.log_text()  # the endpoint does not spam the journal


def test_providers_feed_gauges_and_failures_are_counted() -> None:
    metrics = AgentMetrics()
    metrics.set_provider("edge_print_queue_jobs", lambda: 4)
    metrics.set_provider("edge_fiscal_backlog_receipts", lambda: 1 / 0)
    metrics.add_provider("edge_example", "labelled", lambda: {("a",): 1.0, ("b",): 2.0},
                         ("x",))
    metrics.observe({"kind": "decision", "gate": "g", "reason": "expired", "latency_ms": 2.5})
    metrics.observe({"kind": "pulse", "gate": "g"})
    text = metrics.render().decode()
    assert "edge_print_queue_jobs 4.0" in text
    assert 'edge_metrics_provider_errors_total{metric="edge_fiscal_backlog_receipts"} 1.0' \
        in text
    assert 'edge_example{x="b"} 2.0' in text
    assert 'edge_decisions_total{gate="g",reason="expired"} 1.0' in text
    assert parse_listen("0.0.0.0:9108") == ("0.0.0.0", 9108)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen("9108x")


def test_endpoints_mount_on_the_agents_local_http_server(
    write_config: Callable[..., Path], tmp_path: Path,
) -> None:
    port = free_port()
    config = write_config(f'[local_http]\nport = {port}\n')
    agent = AgentProcess(config, tmp_path / "agent.log")
    try:
        assert edge_sim("tap", "04DEADBEEF0001", "--json", config=config).returncode == 0
        for _ in range(100):
            code, body = healthz(port)
            if body.get("status") == "ok":
                break
            time.sleep(0.1)
        assert code == 200 and body["status"] == "ok", body
        m = scrape(port)
        assert m["edge_decisions_total"][(("gate", "g1"), ("reason", "unknown_credential"))] == 1
        assert "edge_sync_connected" not in m  # no [mqtt] on this device
    finally:
        agent.stop()
