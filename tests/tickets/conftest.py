"""The bridge's database fixtures (SQLite and PostgreSQL) for the ticket tests."""

from tests.bridge.conftest import (  # noqa: F401  (pytest finds fixtures by name)
    broker_port,
    client,
    db_url,
    engine,
    keys_dir,
    pg_url,
    published,
    tenant,
    tenant_keys,
)
