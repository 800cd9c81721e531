from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.smtp_server import smtp_server  # noqa: F401  (a real SMTP server fixture)

# Browser tests run on SQLite only: page logic is the same on both databases, and each
# database-specific query is tested without a browser on both. test_browser_e2e keeps its
# PostgreSQL run (marked browser_on_postgresql); EDGE_BROWSER_ALL_DBS=1 runs them all.
BROWSER_ALL_DBS = os.environ.get("EDGE_BROWSER_ALL_DBS") == "1"


def _is_browser_test_on_postgresql(item: pytest.Item) -> bool:
    from tests import browser

    module = getattr(item, "module", None)
    callspec = getattr(item, "callspec", None)
    return (module is not None and getattr(module, "chromium", None) is browser.chromium
            and callspec is not None and callspec.params.get("db_url") == "postgresql"
            and item.get_closest_marker("browser_on_postgresql") is None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser_on_postgresql: a browser test that also "
                            "runs on PostgreSQL")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if BROWSER_ALL_DBS:
        return
    dropped = [item for item in items if _is_browser_test_on_postgresql(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts"))


@pytest.fixture
def hmac_key() -> bytes:
    return b"k" * 32


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def config_text(
    data_dir: Path,
    hmac_key: bytes,
    public_key: bytes | None = None,
    extra: str = "",
    gates: str | None = None,
) -> str:
    pub = f'tenant_public_key = "base64:{base64.b64encode(public_key).decode()}"' if public_key \
        else ""
    peripherals = gates if gates is not None else """
[[gates]]
id = "g1"
url = "sim:"
zone = "main"
display = "d1"

[[gates]]
id = "g2"
url = "sim:"
zone = "sauna"

[[displays]]
id = "d1"
url = "sim:"

[[readers]]
id = "entry"
url = "sim:"
gate = "g1"
direction = "in"

[[readers]]
id = "exit"
url = "sim:"
gate = "g1"
direction = "out"

[[readers]]
id = "sauna"
url = "sim:"
gate = "g2"
direction = "in"
"""
    return f"""
tenant = "t1"
device = "dev1"
site = "s1"
data_dir = "{data_dir}"

[keys]
credential_hmac_key = "base64:{base64.b64encode(hmac_key).decode()}"
{pub}
{extra}
{peripherals}
"""


@pytest.fixture
def write_config(tmp_path: Path, hmac_key: bytes) -> Callable[..., Path]:
    def write(extra: str = "", public_key: bytes | None = None, name: str = "agent.toml",
              gates: str | None = None) -> Path:
        path = tmp_path / name
        path.write_text(config_text(tmp_path / "data", hmac_key, public_key, extra, gates))
        return path

    return write
