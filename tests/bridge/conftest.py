"""Fixtures for the bridge tests: a fresh database per run (SQLite file per test, one
PostgreSQL database per session), tenants with keys, a Mosquitto broker of our own per
test, an in-process bridge."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine

from cloud_bridge.db_schema import make_engine
from cloud_bridge.mqtt_link import MqttSettings
from cloud_bridge.service import Bridge, BridgeSettings
from cloud_bridge.tenant_keys import TenantKeys, TenantKeyStore, create_tenant
from tests.mqtt_broker import start_mosquitto

PG_ADMIN = os.environ.get("BRIDGE_TEST_PG", "host=127.0.0.1 port=5432 user=postgres")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"edge_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN + " dbname=postgres", autocommit=True,
                                connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable ({PG_ADMIN}): {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    params = dict(p.split("=", 1) for p in PG_ADMIN.split())
    yield (f"postgresql+psycopg://{params.get('user', 'postgres')}@{params.get('host')}:"
           f"{params.get('port', '5432')}/{name}")
    with psycopg.connect(PG_ADMIN + " dbname=postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bridge.sqlite3'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def tenant(keys_dir: Path) -> str:
    """A fresh tenant per test: tests sharing the PostgreSQL database never meet."""
    name = f"t{uuid.uuid4().hex[:10]}"
    create_tenant(keys_dir, name)
    return name


@pytest.fixture
def tenant_keys(keys_dir: Path, tenant: str) -> TenantKeys:
    return TenantKeyStore(keys_dir).get(tenant)


@pytest.fixture
def broker_port(tmp_path: Path) -> Iterator[int]:
    proc, port = start_mosquitto(tmp_path / "broker")
    yield port
    stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def bridge_settings(db_url: str, keys_dir: Path, port: int, **kw: object) -> BridgeSettings:
    mqtt = MqttSettings(port=port, client_id=f"bridge-{uuid.uuid4().hex[:8]}")
    return BridgeSettings(db_url=db_url, keys_dir=keys_dir, mqtt=mqtt, **kw)  # type: ignore


@pytest.fixture
def bridge(engine: Engine, db_url: str, keys_dir: Path, broker_port: int) -> Iterator[Bridge]:
    b = Bridge(bridge_settings(db_url, keys_dir, broker_port), engine=engine).start()
    assert b.link.connected.wait(10), "bridge did not connect to the test broker"
    yield b
    b.stop()


class FakePublisher:
    """Stands in for the MQTT link where a test only needs to see what is published."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes) -> None:
        self.messages.append((topic, payload))

    def on(self, suffix: str) -> list[bytes]:
        return [p for t, p in self.messages if t.endswith(suffix)]


@pytest.fixture
def published() -> FakePublisher:
    return FakePublisher()


API_TOKEN = "test-token-0123456789"


@pytest.fixture
def client(engine: Engine, keys_dir: Path, published: FakePublisher) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from cloud_bridge.api import ApiContext, create_app
    from cloud_bridge.change_feed import ChangeFeed

    keys = TenantKeyStore(keys_dir)
    ctx = ApiContext(engine, keys, ChangeFeed(keys, published, "es/v1"), published, "es/v1",
                     API_TOKEN)
    with TestClient(create_app(ctx), headers={"Authorization": f"Bearer {API_TOKEN}"}) as c:
        yield c
