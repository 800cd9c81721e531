"""Property-based fuzzing of the bridge's JSON API from its own OpenAPI document
(schemathesis): whatever the generated paths, queries and bodies, no answer is a 5xx.

The app is the one ``cloud-bridge serve`` runs (JSON API, attendance, member QR, the
driving-school tablet API), called in process over ASGI, on SQLite and on PostgreSQL.
Requests carry a tenant's own API token and every generated ``tenant`` is replaced by the
real tenant, so the routes get past authentication and tenant lookup and reach the
database. Hypothesis' example count is small so the whole test stays well under a minute.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from sqlalchemy import Engine

from cloud_bridge.mqtt_link import MqttSettings
from cloud_bridge.service import Bridge, BridgeSettings
from cloud_bridge.tenant_keys import add_api_token
from tests.bridge.conftest import FakePublisher

EXAMPLES_PER_OPERATION = 10


@pytest.fixture
def tenant_token(keys_dir: Path, tenant: str) -> str:
    return add_api_token(keys_dir, tenant, "fuzz")


@pytest.fixture
def bridge_schema(engine: Engine, db_url: str, keys_dir: Path, tenant: str,
                  published: FakePublisher) -> Any:
    settings_ = BridgeSettings(db_url=db_url, keys_dir=keys_dir,
                               mqtt=MqttSettings(client_id=f"fuzz-{uuid.uuid4().hex[:8]}"))
    bridge = Bridge(settings_, engine=engine)  # never started: no broker needed
    bridge.link = published  # type: ignore[assignment]
    bridge.feed.publisher = published  # type: ignore[attr-defined]
    app = bridge.app("operator-token-not-used-here", secure_cookies=False)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def strategies(operation: Any) -> Any:
    """Valid requests, and requests that break the schema (numbers past their bounds,
    wrong types): both must get a 2xx/4xx answer."""
    return st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                     operation.as_strategy(GenerationMode.NEGATIVE))


@pytest.mark.timeout(180)
def test_no_server_error(bridge_schema: Any, tenant: str, tenant_token: str) -> None:
    headers = {"Authorization": f"Bearer {tenant_token}"}
    operations = [result.ok() for result in bridge_schema.get_all_operations()]
    assert len(operations) > 30, "the OpenAPI document lost its routes"
    failures: list[str] = []
    for operation in operations:

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
                  database=None, phases=[Phase.explicit, Phase.generate, Phase.shrink],
                  suppress_health_check=list(HealthCheck))
        @given(case=strategies(operation))
        def call(case: Any) -> None:
            if "tenant" in (case.path_parameters or {}):
                case.path_parameters["tenant"] = tenant
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        try:
            call()
        except Exception as exc:  # one line per failing operation, all operations run
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
