"""The bridge tests' fixtures (a SQLite file and a PostgreSQL database per run, tenants
with keys, a broker per test) plus the attendance tables and event loading."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from cloud_bridge.attendance.schema import create_attendance_schema
from cloud_bridge.db_schema import make_engine
from cloud_bridge.ingest import Ingestor
from cloud_bridge.wire import EventBatch
from tests.bridge.conftest import (  # noqa: F401 - fixtures, used by name
    API_TOKEN,
    FakePublisher,
    broker_port,
    db_url,
    keys_dir,
    pg_url,
    published,
    tenant,
    tenant_keys,
)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:  # noqa: F811
    eng = make_engine(db_url)
    create_attendance_schema(eng)
    yield eng
    eng.dispose()


def ingest(engine: Engine, events: list[dict[str, Any]]) -> None:
    """Store events the way the bridge does (one batch per device and 500 events)."""
    by_device: dict[str, list[dict[str, Any]]] = {}
    for ev in events:
        by_device.setdefault(ev["device"], []).append(ev)
    batches = []
    for device, evs in by_device.items():
        for i in range(0, len(evs), 500):
            chunk = evs[i:i + 500]
            batches.append(EventBatch.model_validate(
                {"v": 1, "tenant": chunk[0]["tenant"], "device": device, "events": chunk}))
    Ingestor(engine).ingest(batches)
