"""``cloud-bridge serve --workers N``: the web pages and JSON API served by N processes.

The bridge process keeps the MQTT link, the ingest worker and the members-sync workers
(one set, as with one process). HTTP is served by N uvicorn worker processes started by
uvicorn's own supervisor from one listening socket bound by the bridge process; it
restarts a worker that dies. Each worker is a fresh interpreter (uvicorn spawns, it does
not fork), so each opens its own database engine and its own MQTT connection, used only
to publish (membership changes, device commands): it subscribes to nothing, so device
messages still go to the ingest worker of the bridge process only.

Sessions, CSRF tokens and login throttling live in the database (web/auth.py), so any
worker serves any request of a logged-in browser.

The workers get their settings from an environment variable (spawned processes inherit
the environment; uvicorn needs an import string to start a worker, not an object). It
holds the API token and MQTT password the bridge process was given, readable like the
bridge's own environment by the same user only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cloud_bridge.mqtt_link import BridgeLink, MqttSettings
from cloud_bridge.service import Bridge, BridgeSettings
from contracts.command_expiry import CommandLifetimes

log = logging.getLogger(__name__)

SETTINGS_ENV = "BRIDGE_WEB_WORKER_SETTINGS"
APP_FACTORY = "cloud_bridge.web_processes:worker_app"


@dataclasses.dataclass(frozen=True, slots=True)
class WebWorkerSettings:
    bridge: BridgeSettings
    api_token: str | None
    web: bool
    secure_cookies: bool

    def to_json(self) -> str:
        b = self.bridge
        return json.dumps({
            "db_url": b.db_url, "keys_dir": str(b.keys_dir), "max_lag": b.max_lag,
            "chunk_rows": b.chunk_rows, "mqtt": dataclasses.asdict(b.mqtt),
            "ca_dir": str(b.ca_dir) if b.ca_dir else None,
            "command_lifetimes": dataclasses.asdict(b.command_lifetimes),
            "api_token": self.api_token, "web": self.web,
            "secure_cookies": self.secure_cookies})

    @classmethod
    def from_json(cls, text: str) -> WebWorkerSettings:
        raw = json.loads(text)
        # a worker only publishes: its own client id, and never a persistent session
        mqtt = dataclasses.replace(MqttSettings(**raw["mqtt"]), session_expiry_s=0,
                                   client_id=f"{raw['mqtt']['client_id']}-web{os.getpid()}")
        bridge = BridgeSettings(db_url=raw["db_url"], keys_dir=Path(raw["keys_dir"]),
                                mqtt=mqtt, max_lag=raw["max_lag"],
                                chunk_rows=raw["chunk_rows"],
                                ca_dir=Path(raw["ca_dir"]) if raw["ca_dir"] else None,
                                command_lifetimes=CommandLifetimes(**raw["command_lifetimes"]))
        return cls(bridge, raw["api_token"], raw["web"], raw["secure_cookies"])


def worker_app() -> Any:
    """The app of one web worker process (uvicorn calls this in the worker)."""
    settings = WebWorkerSettings.from_json(os.environ[SETTINGS_ENV])
    bridge = Bridge(settings.bridge)
    assert isinstance(bridge.link, BridgeLink)  # workers never carry JetStream settings
    bridge.link.subscribe = False
    app = bridge.app(settings.api_token, web=settings.web,
                     secure_cookies=settings.secure_cookies)

    original = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        bridge.link.start(wait_s=0)
        try:
            async with original(application) as state:
                yield state
        finally:
            bridge.link.stop()
            bridge.engine.dispose()

    app.router.lifespan_context = lifespan
    return app


def serve_workers(settings: WebWorkerSettings, host: str, port: int, workers: int) -> None:
    """Bind ``host:port`` and run ``workers`` web processes until SIGINT/SIGTERM (blocks;
    call from the main thread: uvicorn's supervisor handles the signals)."""
    import uvicorn

    os.environ[SETTINGS_ENV] = settings.to_json()
    uvicorn.run(APP_FACTORY, factory=True, workers=workers, host=host, port=port,
                log_level="warning", access_log=False)
