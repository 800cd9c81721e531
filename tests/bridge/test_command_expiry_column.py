"""A bridge database made before commands carried an expiry gets the ``expires_at``
column when a new bridge starts (SQLite and PostgreSQL); its old rows keep working."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, inspect, select

from cloud_bridge.db_schema import commands, make_engine, normalise_url
from cloud_bridge.device_reports import command_outcome
from tests.bridge.conftest import PG_ADMIN

OLD_COMMANDS = """CREATE TABLE commands (
    request_id VARCHAR(64) PRIMARY KEY, tenant VARCHAR(64) NOT NULL,
    device VARCHAR(64) NOT NULL, name VARCHAR(32) NOT NULL, args JSON NOT NULL,
    sent_at BIGINT NOT NULL, answered_at BIGINT, ok BOOLEAN, result JSON, error TEXT)"""


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/old.sqlite3"
        return
    name = f"edge_old_{uuid.uuid4().hex[:10]}"
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


def test_an_old_database_gets_the_expiry_column(empty_db: str) -> None:
    old = create_engine(normalise_url(empty_db))
    with old.begin() as conn:
        conn.exec_driver_sql(OLD_COMMANDS)
        conn.exec_driver_sql(
            "INSERT INTO commands (request_id, tenant, device, name, args, sent_at) "
            "VALUES ('old-1', 't1', 'g1', 'reload', '{}', 1)")
    old.dispose()
    for _ in range(2):  # a second bridge start finds it there and changes nothing
        engine = make_engine(empty_db)
        with engine.connect() as conn:
            assert "expires_at" in {c["name"] for c in inspect(conn).get_columns("commands")}
            row = conn.execute(select(commands)).mappings().one()
        engine.dispose()
    assert row["expires_at"] is None
    # sent before expiries existed: it waits (the page stops refreshing after a while)
    assert command_outcome(dict(row), 10**13) == "pending"
