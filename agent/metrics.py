"""Prometheus metrics of the agent (prometheus-client), and a small HTTP endpoint for
``/metrics`` and ``/healthz``.

Decision metrics come from the daemon's LiveFeed (every decision carries its gate, reason
and latency), so the tap path gains no work. Everything else is read at scrape time from
*providers*: callables registered with :meth:`AgentMetrics.add_provider`, returning a
number, ``None`` (metric absent) or ``{label values: number}``. Features plug their own
gauges in this way — agent/pos feeds ``edge_print_queue_jobs`` and
``edge_fiscal_backlog_receipts``::

    metrics.set_provider("edge_print_queue_jobs", lambda: queue.depth())

Metric names (all prefixed ``edge_``) are listed in docs/technician.md.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.live_feed import LiveFeed

log = logging.getLogger(__name__)

Value = float | int | None | Mapping[tuple[str, ...], float]
Provider = Callable[[], Value]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
HEALTH_VALUE = {"ok": 2.0, "degraded": 1.0, "down": 0.0}


@dataclass(slots=True)
class _Gauge:
    name: str
    help: str
    labels: tuple[str, ...]
    provider: Provider | None


class AgentMetrics(Collector):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._gauges: dict[str, _Gauge] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # declared up front so dashboards find them even before a feature feeds them
        self.add_provider("edge_print_queue_jobs", "Receipts waiting for the printer")
        self.add_provider("edge_fiscal_backlog_receipts",
                          "Receipts not yet fiscally verified (FURS)")
        self.registry.register(self)
        # registered after the gauges, so a provider failing in a scrape shows in that scrape
        self.provider_errors = Counter(
            "edge_metrics_provider_errors", "Scrapes where a metric provider failed",
            ["metric"], registry=self.registry)
        self.decision_latency = Histogram(
            "edge_decision_latency_seconds", "Read seen to decision shown, per gate",
            ["gate"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.decisions = Counter(
            "edge_decisions", "Access decisions by gate and reason code",
            ["gate", "reason"], registry=self.registry)

    # -- providers ---------------------------------------------------------------------

    def add_provider(self, name: str, help_text: str, provider: Provider | None = None,
                     labels: tuple[str, ...] = ()) -> None:
        with self._lock:
            self._gauges[name] = _Gauge(name, help_text, labels, provider)

    def set_provider(self, name: str, provider: Provider) -> None:
        with self._lock:
            self._gauges[name].provider = provider

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            gauges = list(self._gauges.values())
        for g in gauges:
            if g.provider is None:
                continue
            try:
                value = g.provider()
            except Exception:
                log.debug("metric provider %s failed", g.name, exc_info=True)
                self.provider_errors.labels(g.name).inc()
                continue
            if value is None:
                continue
            family = GaugeMetricFamily(g.name, g.help, labels=list(g.labels) or None)
            if isinstance(value, Mapping):
                for label_values, v in value.items():
                    family.add_metric(list(label_values), float(v))
            else:
                family.add_metric([], float(value))
            yield family

    # -- decisions from the live feed ------------------------------------------------

    def observe(self, item: Mapping[str, Any]) -> None:
        if item.get("kind") != "decision":
            return
        gate = str(item.get("gate", ""))
        self.decisions.labels(gate, str(item.get("reason", ""))).inc()
        latency = item.get("latency_ms")
        if isinstance(latency, int | float):
            self.decision_latency.labels(gate).observe(latency / 1000)

    def follow(self, feed: LiveFeed) -> None:
        q = feed.subscribe()

        def run() -> None:
            try:
                while not self._stop.is_set():
                    try:
                        self.observe(q.get(timeout=0.5))
                    except queue.Empty:
                        continue
            finally:
                feed.unsubscribe(q)

        self._thread = threading.Thread(target=run, name="metrics-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class StoreReader:
    """A read-only connection of the metrics' own, so scrapes never touch the tap path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        with self._lock:
            if self._conn is None:
                self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                             check_same_thread=False, timeout=2.0)
            return self._conn.execute(sql, args).fetchone()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class AckTracker:
    """Remembers when the link's acked seq last moved (the link keeps no timestamp)."""

    def __init__(self, link: Any) -> None:
        self.link = link
        self._seen = int(getattr(link, "acked", 0))
        self._at: float | None = None

    def age_s(self) -> float | None:
        acked = int(self.link.acked)
        if acked != self._seen:
            self._seen, self._at = acked, time.monotonic()
        return None if self._at is None else time.monotonic() - self._at


def wire_agent(metrics: AgentMetrics, daemon: Any, *, link: Any = None,
               maintenance: Any = None, watchdog: Any = None) -> StoreReader:
    """Register the agent's own gauges; returns the reader to close at shutdown."""
    reader = StoreReader(daemon.config.store_path)
    cfg = daemon.config

    def meta_int(key: str) -> int:
        row = reader.query("SELECT value FROM meta WHERE key = ?", (key,))
        return int(row[0]) if row else 0

    def oldest_age() -> float:
        row = reader.query("SELECT MIN(created_ms) FROM outbox")
        return 0.0 if row[0] is None else max(time.time() - row[0] / 1000, 0.0)

    def peripherals() -> dict[tuple[str, ...], float]:
        out: dict[tuple[str, ...], float] = {}
        for role, group in (("reader", daemon.readers), ("gate", daemon.gates),
                            ("display", daemon.displays), ("printer", daemon.printers)):
            for pid, p in list(group.items()):
                out[(pid, role)] = HEALTH_VALUE.get(p.health().state.value, 0.0)
        return out

    add = metrics.add_provider
    add("edge_agent_info", "Agent identity (value 1)",
        lambda: {(cfg.tenant, cfg.device, _version()): 1.0}, ("tenant", "device", "version"))
    add("edge_outbox_depth", "Events waiting for the bridge's ack",
        lambda: reader.query("SELECT COUNT(*) FROM outbox")[0])
    add("edge_outbox_oldest_age_seconds", "Age of the oldest unacknowledged event", oldest_age)
    add("edge_outbox_last_seq", "Highest event seq written", lambda: meta_int("last_seq"))
    add("edge_membership_version", "Membership data version applied",
        lambda: meta_int("membership_version"))
    add("edge_peripheral_health", "Peripheral health: 2 ok, 1 degraded, 0 down", peripherals,
        ("peripheral", "role"))
    if link is not None:
        acks = AckTracker(link)
        add("edge_sync_connected", "1 while the MQTT link is connected",
            lambda: 1.0 if link.connected else 0.0)
        add("edge_sync_acked_seq", "Highest seq the bridge acknowledged",
            lambda: float(link.acked))
        add("edge_sync_last_ack_age_seconds", "Seconds since the acked seq last advanced",
            acks.age_s)
    if maintenance is not None:
        add("edge_disk_free_bytes", "Free bytes on the data partition",
            lambda: maintenance.last_disk.free if maintenance.last_disk else None)
        add("edge_disk_alarm", "1 while the data partition is nearly full",
            lambda: 1.0 if maintenance.alarm else 0.0)
    if watchdog is not None:
        add("edge_healthy", "1 while every liveness check passes",
            lambda: None if watchdog.last is None else float(watchdog.last.alive))
        add("edge_self_test_tap_seconds", "Duration of the last self-test tap",
            lambda: None if watchdog.last is None or watchdog.last.probe_ms is None
            else watchdog.last.probe_ms / 1000)
    return reader


def _version() -> str:
    from agent import __version__

    return __version__


# -- HTTP -----------------------------------------------------------------------------

class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGIServer(WSGIServer):
    daemon_threads = True

    def process_request(self, request: Any, client_address: Any) -> None:
        t = threading.Thread(target=self._handle, args=(request, client_address), daemon=True)
        t.start()

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


HealthSource = Callable[[], dict[str, Any] | None]


def health_app(metrics: AgentMetrics, health: HealthSource) -> Callable[..., Any]:
    """WSGI app: /metrics (Prometheus text) and /healthz (JSON; 200 ok/degraded, 503)."""
    prom = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            exposition: list[bytes] = prom(environ, start_response)
            return exposition
        if path == "/healthz":
            report = health()
            if report is None:
                report = {"status": "starting", "checks": [], "alarms": []}
            code = "200 OK" if report["status"] in ("ok", "degraded") else \
                "503 Service Unavailable"
            body = json.dumps(report).encode()
            start_response(code, [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics or /healthz\n"]

    return app


def fastapi_router(metrics: AgentMetrics, health: HealthSource) -> Any:
    """The same two endpoints as an APIRouter for agent/local_http.py's server."""
    from fastapi import APIRouter, Response

    router = APIRouter()

    @router.get("/metrics")
    def _metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @router.get("/healthz")
    def _healthz() -> Response:
        report = health() or {"status": "starting", "checks": [], "alarms": []}
        code = 200 if report["status"] in ("ok", "degraded") else 503
        return Response(json.dumps(report), status_code=code, media_type="application/json")

    return router


class HttpEndpoint:
    """prometheus-client's exposition served by the standard library's WSGI server."""

    def __init__(self, app: Callable[..., Any], host: str, port: int) -> None:
        self.server = make_server(host, port, app, _ThreadingWSGIServer,
                                  handler_class=_QuietHandler)
        self.port = int(self.server.server_port)
        self._thread = threading.Thread(target=self.server.serve_forever, name="metrics-http",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--metrics must be HOST:PORT (e.g. 127.0.0.1:9108), got '{value}'")
    return host.strip("[]") or "127.0.0.1", int(port)
