"""End-to-end fixtures: the PostgreSQL database of the bridge tests."""

from tests.bridge.conftest import pg_url  # noqa: F401
