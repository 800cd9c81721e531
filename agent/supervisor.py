"""The on-device companions of a running daemon, started and stopped together by
``edge-agent run``: storage maintenance, health checks with the systemd watchdog,
metrics with the /metrics and /healthz endpoint, and the READY/STOPPING notifications.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.daemon_ports import LinkStatus, SupervisedAgent
from agent.health import AgentHealth, HealthReport
from agent.store.maintenance import (
    DEFAULT_KEEP_BACKUPS,
    DEFAULT_MIN_FREE_MB,
    DEFAULT_RESERVE_MB,
    StoreMaintenance,
)
from agent.watchdog import Notifier, Watchdog, install_fault_injection

if TYPE_CHECKING:  # prometheus-client and uvicorn load only when metrics are served
    from agent.local_http import LocalHttpServer
    from agent.metrics import AgentMetrics, HttpEndpoint, StoreReader

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceOptions:
    metrics_listen: str | None = None  # "HOST:PORT"; None = no HTTP endpoint
    min_free_mb: int = DEFAULT_MIN_FREE_MB
    keep_backups: int = DEFAULT_KEEP_BACKUPS
    reserve_mb: int = DEFAULT_RESERVE_MB


class DeviceServices:
    def __init__(self, daemon: SupervisedAgent, link: LinkStatus | None,
                 options: DeviceOptions) -> None:
        self.daemon = daemon
        self.link = link
        self.options = options
        self.notifier = Notifier()
        self.maintenance = StoreMaintenance(
            daemon.store, daemon.outbox, min_free_bytes=options.min_free_mb * 1024 * 1024,
            reserve_bytes=options.reserve_mb * 1024 * 1024, keep_backups=options.keep_backups)
        interval = self.notifier.watchdog_interval_s()
        probe_timeout = 0.8 * (interval or 5.0)
        self.health = AgentHealth(daemon, link, alarm_sources=(lambda: self.maintenance.alarm,),
                                  probe_timeout_s=probe_timeout)
        self.watchdog = Watchdog(self._evaluate, self.notifier)
        self._ready = False
        self.metrics: AgentMetrics | None = None
        self.http: HttpEndpoint | None = None
        self._reader: StoreReader | None = None

    def start(self) -> None:
        self.maintenance.start()
        self.watchdog.start()
        local_http = self.daemon.http
        if self.options.metrics_listen or local_http is not None:
            self._start_metrics(self.options.metrics_listen, local_http)
        install_fault_injection(self.daemon)
        cfg = self.daemon.config
        self.notifier.ready(f"deciding at {len(cfg.gates)} gates; device {cfg.device}")
        self._ready = True
        if getattr(self.daemon, "updates", None) is not None:
            self._evaluate()  # a new version on trial confirms now, not a tick later

    def _evaluate(self) -> HealthReport:
        report = self.health.evaluate()
        updates = getattr(self.daemon, "updates", None)  # [update]: agent/update/trial.py
        if updates is not None:
            try:
                updates.on_health(report, self._ready)
            except OSError:
                log.exception("update trial bookkeeping failed")
        return report

    def _start_metrics(self, listen: str | None, local_http: LocalHttpServer | None) -> None:
        # imported here: a device without metrics does not pay for prometheus-client
        from agent.metrics import (
            AgentMetrics,
            HttpEndpoint,
            fastapi_router,
            health_app,
            parse_listen,
            wire_agent,
        )

        self.metrics = AgentMetrics()
        self._reader = wire_agent(self.metrics, self.daemon, link=self.link,
                                  maintenance=self.maintenance, watchdog=self.watchdog)
        self.metrics.follow(self.daemon.feed)
        if local_http is not None:  # the agent's own web server ([local_http] in the config)
            local_http.add_router(fastapi_router(self.metrics, self.health_snapshot))
            log.info("metrics and health on the local HTTP server: /metrics and /healthz")
        if listen:
            host, port = parse_listen(listen)
            self.http = HttpEndpoint(health_app(self.metrics, self.health_snapshot), host, port)
            self.http.start()
            log.info("metrics and health on http://%s:%d/metrics and /healthz", host,
                     self.http.port)

    def health_snapshot(self) -> dict[str, Any] | None:
        report = self.watchdog.last
        if report is None:
            return None
        out = report.as_dict()
        if not self.watchdog.is_alive():
            out["status"] = "failing"
            out["checks"].append({"name": "watchdog", "ok": False,
                                  "detail": "the health loop has stopped"})
        return out

    def stop(self) -> None:
        self.notifier.stopping()
        if self.http is not None:
            self.http.stop()
        if self.metrics is not None:
            self.metrics.stop()
        self.watchdog.stop()
        self.maintenance.stop()
        if self._reader is not None:
            self._reader.close()
