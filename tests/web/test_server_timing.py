"""Every response of the bridge's served app says how long the server worked on it
(``Server-Timing: app;dur=<ms>``), read here through real HTTP from a uvicorn server."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from tests.mqtt_broker import free_port
from tests.web.conftest import PASSWORD, WebSite

TIMING = re.compile(r"^app;dur=(\d+(?:\.\d+)?)$")


@pytest.fixture
def served(site: WebSite) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(site.app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def server_ms(response: httpx.Response) -> float:
    found = TIMING.match(response.headers.get("server-timing", ""))
    assert found, f"{response.request.url}: Server-Timing {response.headers.get('server-timing')!r}"
    return float(found.group(1))


def test_every_response_carries_its_server_time(site: WebSite, served: str) -> None:
    tenant = site.tenants[0]
    user = site.user(tenant, "reception")
    with httpx.Client(base_url=served) as c:
        assert 0 < server_ms(c.get("/healthz")) < 10_000
        assert server_ms(c.get("/no-such-page")) >= 0  # errors too
        assert server_ms(c.get(f"/api/v1/t/{tenant}/devices")) >= 0  # the JSON API (401)
        c.get("/login")
        token = c.cookies.get("es_login_csrf", path="/login")
        r = c.post("/login", data={"username": user, "password": PASSWORD,
                                   "csrf_token": token})
        assert r.status_code == 303 and server_ms(r) > 0
        page = c.get(f"/t/{tenant}/live")
        assert page.status_code == 200 and "fig-occupancy" in page.text
        assert server_ms(page) > 0

