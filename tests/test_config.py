"""Broken config files give errors that name the file, the key and what is expected,
and never start a daemon."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.config import load_config
from agent.daemon import AgentDaemon
from agent.errors import ConfigError


def test_good_config_loads(write_config: Callable[..., Path]) -> None:
    cfg = load_config(write_config())
    assert cfg.tenant == "t1" and [g.id for g in cfg.gates] == ["g1", "g2"]
    assert len(cfg.hmac_key()) == 32
    assert cfg.store_path.name == "agent.sqlite3"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda t: t.replace('tenant = "t1"', ""), "tenant: Field required"),
        (lambda t: t.replace('tenant = "t1"', 'tenant = "t 1/x"'), "tenant: String should match"),
        (lambda t: t.replace('direction = "out"', 'direction = "sideways"'),
         "readers[1].direction: Input should be 'in' or 'out' (got 'sideways')"),
        (lambda t: t.replace('gate = "g2"', 'gate = "g9"'),
         "readers[2].gate: 'g9' is not a gate id (known: g1, g2)"),
        (lambda t: t.replace('display = "d1"', 'display = "nope"'), "'nope' is not a display id"),
        (lambda t: t.replace('site = "s1"', 'site = "s1"\nsiet = 3'), "siet: unknown key"),
        (lambda t: 'timezone = "Mars/Olympus"\n' + t, "unknown time zone 'Mars/Olympus'"),
        (lambda t: t.replace('credential_hmac_key = "base64:', 'credential_hmac_key = "base64:!!'),
         "keys.credential_hmac_key: is not valid base64"),
        (lambda t: t.replace('credential_hmac_key = "base64:', 'credential_hmac_key = "rot13:'),
         "unknown key encoding 'rot13:'"),
        (lambda t: re.sub(r'credential_hmac_key = ".*"', 'credential_hmac_key = "hex:0011"', t),
         "at least 16 bytes"),
        (lambda t: t.replace('credential_hmac_key = "base64:', 'credential_hmac_key = "file:'),
         "cannot read key file"),
        (lambda t: t + '\n[site_policy]\noccupancy_limit = 0', "site_policy.occupancy_limit"),
        (lambda t: t.replace('zone = "sauna"', 'zone = "sauna"\npulse_ms = 5'),
         "gates[1].pulse_ms: Input should be greater than or equal to 50"),
        (lambda t: t.replace('id = "g2"', 'id = "g1"'), "id 'g1' is used twice"),
        (lambda t: t.replace('tenant = "t1"', 'tenant = "t1'), "not valid TOML"),
    ],
)
def test_bad_config_is_explained(write_config: Callable[..., Path], mutate, expected: str) -> None:
    path = write_config()
    path.write_text(mutate(path.read_text()))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path.resolve()) in message or str(path) in message
    assert expected in message


def test_key_values_never_appear_in_errors(write_config: Callable[..., Path]) -> None:
    path = write_config()
    text = re.sub(r'credential_hmac_key = ".*"', 'credential_hmac_key = "hex:c0ffee00c0ffee"',
                  path.read_text())
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "c0ffee" not in str(err.value)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary)


def test_unknown_backend_stops_startup_before_anything_runs(
    write_config: Callable[..., Path],
) -> None:
    path = write_config()
    path.write_text(path.read_text().replace('id = "sauna"\nurl = "sim:"',
                                             'id = "sauna"\nurl = "laser:beam"'))
    daemon = AgentDaemon(load_config(path))
    with pytest.raises(ConfigError, match=r"reader .sauna. \(laser:beam\).*no reader back-end"):
        daemon.start()
    # nothing was started: no reader delivers reads
    assert all(r.health().state.value == "down" for r in daemon.readers.values())


def test_cli_refuses_broken_config_with_exit_code(write_config: Callable[..., Path]) -> None:
    path = write_config()
    path.write_text(path.read_text().replace('direction = "out"', 'direction = 7'))
    proc = subprocess.run([sys.executable, "-m", "agent", "run", "-c", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "readers[1].direction" in proc.stderr
