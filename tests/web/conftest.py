"""Fixtures of the web-module tests: the bridge's served app (JSON API + web pages) on
SQLite and on PostgreSQL, with the MQTT side replaced by a recording publisher, and
logged-in clients per role and tenant."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from cloud_bridge.db_schema import make_engine
from cloud_bridge.mqtt_link import MqttSettings
from cloud_bridge.service import Bridge, BridgeSettings
from cloud_bridge.tenant_keys import create_tenant
from cloud_bridge.web.auth import WebAuth
from cloud_bridge.web.session_routes import LOGIN_CSRF_COOKIE
from tests.bridge.conftest import FakePublisher, db_url, pg_url  # noqa: F401 - fixtures

API_TOKEN = "web-test-token-0123456789"
PASSWORD = "a long test password"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:  # noqa: F811
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@dataclass
class WebSite:
    app: FastAPI
    engine: Engine
    published: FakePublisher
    keys_dir: Path
    tenants: tuple[str, str]
    auth: WebAuth

    def user(self, tenant: str, role: str) -> str:
        name = f"{role}-{uuid.uuid4().hex[:8]}@{tenant}.si"
        self.auth.create_user(tenant, name, PASSWORD, role)
        return name

    def client(self) -> TestClient:
        return TestClient(self.app, base_url="http://testserver")

    def login(self, username: str, password: str = PASSWORD) -> tuple[TestClient, str]:
        """A client with a session; returns it and the session's CSRF token."""
        c = self.client()
        r = c.post("/login", data={"username": username, "password": password,
                                   "csrf_token": login_token(c)}, follow_redirects=False)
        assert r.status_code == 303, r.text
        staff = self.auth.session(c.cookies.get("es_session"))
        assert staff is not None
        return c, staff.csrf


def login_token(c: TestClient) -> str:
    c.get("/login")
    return str(c.cookies.get(LOGIN_CSRF_COOKIE, path="/login"))


@pytest.fixture
def site(engine: Engine, db_url: str, tmp_path: Path) -> WebSite:  # noqa: F811
    keys_dir = tmp_path / "keys"
    tenants = (f"ta{uuid.uuid4().hex[:8]}", f"tb{uuid.uuid4().hex[:8]}")
    for t in tenants:
        create_tenant(keys_dir, t)
    settings = BridgeSettings(db_url=db_url, keys_dir=keys_dir,
                              mqtt=MqttSettings(client_id=f"web-{uuid.uuid4().hex[:8]}"))
    bridge = Bridge(settings, engine=engine)  # never started: no broker needed
    published = FakePublisher()
    bridge.link = published  # type: ignore[assignment]
    bridge.feed.publisher = published  # type: ignore[attr-defined]
    app = bridge.app(API_TOKEN, secure_cookies=False)
    return WebSite(app, engine, published, keys_dir, tenants,
                   WebAuth(engine, secure_cookies=False))
