"""Bridge-side metric definitions: ingest counts, ack latency, devices online, served
from a FastAPI app by mount_metrics."""

from __future__ import annotations

import time

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from cloud_bridge.metrics import BridgeMetrics, mount_metrics


def test_bridge_metrics_served_from_fastapi() -> None:
    metrics = BridgeMetrics()
    app = FastAPI()
    mount_metrics(app, metrics)
    metrics.batch_acked("gym", 10, 2, time.monotonic() - 0.03)
    metrics.batch_acked("gym", 5, 0, time.monotonic())
    metrics.batch_rejected("wrong_device")
    for device, online in (("a", True), ("b", True), ("a", False), ("c", True)):
        metrics.device_state("gym", device, online)
    reply = TestClient(app).get("/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(reply.text) for s in f.samples}
    assert samples[("bridge_events_ingested_total", (("tenant", "gym"),))] == 15
    assert samples[("bridge_events_duplicate_total", (("tenant", "gym"),))] == 2
    assert samples[("bridge_batches_ingested_total", (("tenant", "gym"),))] == 2
    assert samples[("bridge_batches_rejected_total", (("reason", "wrong_device"),))] == 1
    assert samples[("bridge_ack_latency_seconds_count", ())] == 2
    assert samples[("bridge_ack_latency_seconds_bucket", (("le", "0.025"),))] == 1
    assert samples[("bridge_devices_online", (("tenant", "gym"),))] == 2


def test_metrics_need_the_operator_token_when_the_bridge_has_one() -> None:
    app = FastAPI()
    mount_metrics(app, BridgeMetrics(), token="operator-secret")
    client = TestClient(app)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer operator-secret"})
    assert ok.status_code == 200 and "bridge_events_ingested_total" in ok.text
