"""Prometheus metrics of a bridge process (prometheus-client): ingest rate, ack latency
and devices online, plus :func:`mount_metrics` to serve them from the bridge's FastAPI app.

Each bridge process exports its own figures (Prometheus scrapes every process; sum them
in queries). Wiring, in the ingest code::

    metrics = BridgeMetrics()
    mount_metrics(app, metrics)
    received = time.monotonic()            # when the events batch arrived
    ...commit, publish the ack...
    metrics.batch_acked(tenant, n_new, n_duplicates, received)
    metrics.device_state(tenant, device, online)   # from each retained state message
"""

from __future__ import annotations

import hmac
import threading
import time
from typing import Any

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.events = Counter(
            "bridge_events_ingested", "Device events stored (new, not duplicates)",
            ["tenant"], registry=self.registry)
        self.duplicates = Counter(
            "bridge_events_duplicate", "Events received again and ignored (at-least-once)",
            ["tenant"], registry=self.registry)
        self.batches = Counter(
            "bridge_batches_ingested", "Event batches committed and acknowledged",
            ["tenant"], registry=self.registry)
        self.rejected = Counter(
            "bridge_batches_rejected", "Event batches refused (malformed, wrong topic...)",
            ["reason"], registry=self.registry)
        self.ack_latency = Histogram(
            "bridge_ack_latency_seconds", "Batch received to ack published",
            buckets=ACK_BUCKETS, registry=self.registry)
        self.online = Gauge(
            "bridge_devices_online", "Devices whose retained state says online",
            ["tenant"], registry=self.registry)
        self.refused = Counter(
            "bridge_refused", "Messages or events refused for good and quarantined",
            ["kind"], registry=self.registry)
        self.quarantine_rows = Gauge(
            "bridge_quarantine_rows", "Rows in the quarantine table (all bridges, all "
            "tenants; see the fleet page)", registry=self.registry)
        self._online: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def batch_acked(self, tenant: str, new_events: int, duplicates: int,
                    received_monotonic: float) -> None:
        self.batches.labels(tenant).inc()
        self.events.labels(tenant).inc(new_events)
        if duplicates:
            self.duplicates.labels(tenant).inc(duplicates)
        self.ack_latency.observe(max(time.monotonic() - received_monotonic, 0.0))

    def batch_rejected(self, reason: str) -> None:
        self.rejected.labels(reason).inc()

    def watch_quarantine(self, count: Any) -> None:
        """Read the quarantine's size from the database at each scrape (``count()``)."""
        self.quarantine_rows.set_function(count)

    def device_state(self, tenant: str, device: str, online: bool) -> None:
        with self._lock:
            devices = self._online.setdefault(tenant, set())
            if online:
                devices.add(device)
            else:
                devices.discard(device)
            self.online.labels(tenant).set(len(devices))

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def mount_metrics(app: Any, metrics: BridgeMetrics, path: str = "/metrics",
                  token: str | None = None) -> None:
    """Add ``GET /metrics`` (Prometheus text format) to a FastAPI app. Its labels carry
    tenant ids (no personal data), so with ``token`` (the operator's API token) a scrape
    must send ``Authorization: Bearer <token>``; tenants' own tokens do not open it."""
    from prometheus_client import CONTENT_TYPE_LATEST

    def _metrics(request: Request) -> Response:
        if token is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                    given.strip().encode(), token.encode()):
                return Response("operator token required (Authorization: Bearer …)\n",
                                status_code=401, media_type="text/plain",
                                headers={"WWW-Authenticate": "Bearer"})
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route(path, _metrics, methods=["GET"], include_in_schema=False)
