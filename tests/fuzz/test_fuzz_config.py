"""Fuzzing the device config loader (agent/config.py) with generated TOML: whatever the
file holds, loading it gives a config or a ConfigError (a message for the technician),
never another exception (a traceback on `edge-agent check-config` / `run`)."""

from __future__ import annotations

import base64
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config import load_config
from agent.errors import ConfigError
from tests.conftest import config_text

KEY = b"k" * 32
KEYS = ["tenant", "device", "site", "data_dir", "timezone", "durability", "keys",
        "credential_hmac_key", "tenant_public_key", "device_signing_key", "site_policy",
        "occupancy_limit", "readers", "gates", "displays", "terminals", "id", "url", "gate",
        "terminal", "direction", "zone", "pulse_ms", "display", "control", "socket", "mqtt",
        "port", "host", "local_http", "pin_policy", "pos", "x"]

NASTY = ["Europe", "Europe/Ljubljana", "file:", "file:/", "file:\x00", "file:/proc/self",
         "base64:", "hex:zz", "sim:", "/proc/self", "/proc/self/data", ".", "..", "a" * 5000,
         "\x00", "é/ü", "file:" + "a" * 5000, "/" + "d" * 300, -1, 2**63 - 1, 1e308,
         float("nan"), [], {}, [[[[[]]]]]]
texts = st.one_of(st.text(max_size=40), st.sampled_from(NASTY))
scalars = st.one_of(
    texts, st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True), st.datetimes(), st.dates(), st.times(),
)
REAL_PATHS = [["tenant"], ["device"], ["data_dir"], ["timezone"], ["durability"],
              ["keys", "credential_hmac_key"], ["keys", "tenant_public_key"],
              ["keys", "device_signing_key"], ["control", "socket"], ["gates", "pulse_ms"],
              ["gates", "url"], ["readers", "gate"], ["readers", "options"],
              ["site_policy", "occupancy_limit"], ["mqtt", "port"], ["mqtt", "tls_ca"],
              ["local_http", "port"], ["pos"], ["terminals"], ["pin_policy", "lock_minutes"]]
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(min_size=1, max_size=8), inner,
                      max_size=4),
    max_leaves=12,
)


def test_every_key_with_every_nasty_value(tmp_path: Path) -> None:
    """Systematic first: each real key with each value that once crashed a loader."""
    crashes = []
    for key_path in REAL_PATHS:
        for value in NASTY:
            doc = base_config(tmp_path)
            put(doc, key_path, value)
            path = tmp_path / "agent.toml"
            path.write_text(tomli_w.dumps(doc))
            try:
                must_load_or_explain(path)
            except Exception as exc:  # every crash at once, not the first only
                crashes.append(f"{'.'.join(key_path)} = {str(value)[:30]!r}: {exc!r:.120}")
    assert not crashes, "\n".join(crashes)


def base_config(tmp: Path) -> dict[str, Any]:
    return tomllib.loads(config_text(tmp / "data", KEY, base64.b64decode(
        base64.b64encode(b"p" * 32))))


def put(doc: dict[str, Any], path: list[str], value: Any) -> None:
    """Set doc[path...] = value, descending into tables and first list items."""
    node: Any = doc
    for key in path[:-1]:
        nxt = node.get(key) if isinstance(node, dict) else None
        if isinstance(nxt, list) and nxt and isinstance(nxt[0], dict):
            nxt = nxt[0]
        if not isinstance(nxt, dict):
            nxt = {}
            node[key] = nxt
        node = nxt
    node[path[-1]] = value


def must_load_or_explain(path: Path) -> None:
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(exc).strip(), "an empty error message"
        assert "Traceback" not in str(exc)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(edits=st.lists(st.tuples(
    st.sampled_from(REAL_PATHS) | st.lists(st.sampled_from(KEYS), min_size=1, max_size=3),
    st.one_of(texts, values)), min_size=1, max_size=4))
def test_a_mutated_config_loads_or_is_explained(tmp_path_factory: Any,
                                                edits: list[tuple[list[str], Any]]) -> None:
    tmp = tmp_path_factory.mktemp("cfg")
    doc = base_config(tmp)
    for key_path, value in edits:
        put(doc, key_path, value)
    path = tmp / "agent.toml"
    path.write_text(tomli_w.dumps(doc))
    must_load_or_explain(path)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(alphabet=st.sampled_from(list('[]{}="., \nabc1#\'')), max_size=400))
def test_arbitrary_toml_text_loads_or_is_explained(tmp_path_factory: Any, text: str) -> None:
    path = tmp_path_factory.mktemp("cfg") / "agent.toml"
    path.write_text(text)
    must_load_or_explain(path)
