"""The cluster tests reuse the bridge tests' PostgreSQL database fixture."""

from tests.bridge.conftest import pg_url  # noqa: F401
