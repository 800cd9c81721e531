"""A throw-away PostgreSQL database for one benchmark run, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Callable


def pg_database(admin: str, prefix: str = "edge_bench") -> tuple[str, Callable[[], None]]:
    """Create ``<prefix>_<random>`` through the libpq ``admin`` connection string; returns
    its SQLAlchemy URL and the function that drops it."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin + " dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = dict(p.split("=", 1) for p in admin.split())

    def drop() -> None:
        with psycopg.connect(admin + " dbname=postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return (f"postgresql+psycopg://{params.get('user', 'postgres')}@{params['host']}:"
            f"{params.get('port', '5432')}/{name}", drop)
