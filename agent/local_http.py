"""The agent's local HTTP server: one FastAPI app served by uvicorn in a background
thread, to which features add their routers (the time-clock kiosk, the POS endpoint,
health and metrics). It never touches the network beyond its bind address."""

from __future__ import annotations

import logging
import threading
import time

import uvicorn
from fastapi import APIRouter, FastAPI

log = logging.getLogger(__name__)


class LocalHttpServer:
    def __init__(self, bind: str, port: int, title: str = "edge-agent") -> None:
        self.bind = bind
        self.port = port
        self.app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def add_router(self, router: APIRouter, prefix: str = "") -> None:
        self.app.include_router(router, prefix=prefix)

    def start(self, timeout: float = 10.0) -> None:
        config = uvicorn.Config(self.app, host=self.bind, port=self.port, log_level="warning",
                                access_log=False, lifespan="off")
        # run off the main thread, uvicorn leaves SIGTERM to the daemon
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="local-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"local HTTP server could not listen on {self.bind}:{self.port}")
            time.sleep(0.02)
        if self.port == 0:
            sockets = self._server.servers[0].sockets
            self.port = sockets[0].getsockname()[1]
        log.info("local HTTP on %s:%d", self.bind, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)
