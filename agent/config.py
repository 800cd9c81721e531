"""Device config: one TOML file per device, validated completely before anything starts.

The schema is a contract (contracts/device_config.py: the bridge checks the configs it
hands out with it); here the agent reads the file and its key files. Errors name the
file, the key path (``gates[1].zone``) and what was expected, so a technician can fix
the file without reading code.
"""

from __future__ import annotations

import base64
import binascii
import re
import tomllib
from pathlib import Path
from typing import Any

from agent.errors import ConfigError
from agent.key_files import check_key_file
from contracts.device_config import (
    MAX_NESTING,
    MAX_SOCKET_PATH_BYTES,
    ControlConfig,
    DeviceConfig,
    DeviceConfigError,
    GateConfig,
    KeyMaterial,
    LocalHttpConfig,
    MqttConfig,
    PeripheralConfig,
    PinPolicy,
    ReaderConfig,
    SitePolicy,
    TerminalConfig,
    check_socket_path,
    decode_key,
    validate_device_config,
)

__all__ = [
    "MAX_NESTING", "MAX_SOCKET_PATH_BYTES", "UNPROVISIONED", "AgentConfig", "ControlConfig",
    "GateConfig", "KeyMaterial", "LocalHttpConfig", "MqttConfig", "PeripheralConfig",
    "PinPolicy", "ReaderConfig", "SitePolicy", "TerminalConfig", "decode_key", "load_config",
    "load_key", "parse_config", "refuse_unprovisioned",
]

# tenant and device of the Debian package's default config (packaging/deb/agent.toml): a
# device not provisioned yet. `check-config` accepts it, `run` refuses it, `provision`
# replaces it without --force.
UNPROVISIONED = "unprovisioned"


class AgentConfig(DeviceConfig):
    """The device config as the agent runs it: the schema, and the keys read.

    ``language`` is what the device's own screens, displays and printouts speak (the
    kiosk page starts in it and may be switched per use); ``timezone`` (the schema's) is
    the site's zone, which the kiosk clock shows whatever the browser's zone is. Both are
    in the schema (contracts/device_config.py), so the bridge checks them in profiles."""

    def hmac_key(self) -> bytes:
        return load_key(self.keys.credential_hmac_key, self, "keys.credential_hmac_key")

    def device_signing_key(self) -> bytes | None:
        value = self.keys.device_signing_key
        return None if value is None else load_key(value, self, "keys.device_signing_key")

    def tenant_public_key(self) -> bytes | None:
        value = self.keys.tenant_public_key
        return None if value is None else load_key(value, self, "keys.tenant_public_key")


def refuse_unprovisioned(config: AgentConfig) -> None:
    if (config.tenant, config.device) == (UNPROVISIONED, UNPROVISIONED):
        raise ConfigError(
            f"{config.source}: the package's default config: this device is not provisioned "
            "yet; fix: edge-agent provision --bridge URL --code CODE, then systemctl restart "
            "edge-agent")


def load_key(value: str, config: AgentConfig, key_path: str) -> bytes:
    if value.startswith("file:"):
        path = config.path(value.removeprefix("file:"))
        check_key_file(path, f"{config.source}: {key_path}")
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{config.source}: {key_path}: cannot read key file {path}: "
                              f"{exc.strerror}") from exc
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise ConfigError(f"{config.source}: {key_path}: key file {path} must hold base64 "
                              "text") from exc
    try:
        return decode_key(value)
    except ValueError as exc:
        raise ConfigError(f"{config.source}: {key_path}: {exc}") from None


def parse_config(raw: dict[str, Any], source: str = "<memory>") -> AgentConfig:
    try:
        config = validate_device_config(raw, source, AgentConfig)
    except DeviceConfigError as exc:
        raise ConfigError(str(exc)) from None
    # keys given as files must be readable now, not at the first tap
    config.hmac_key()
    config.tenant_public_key()
    signing = config.device_signing_key()
    if signing is not None and len(signing) != 32:
        raise ConfigError(f"{source}: keys.device_signing_key: must be 32 bytes (raw Ed25519 "
                          "private key)")
    try:
        check_socket_path(config)
    except DeviceConfigError as exc:
        raise ConfigError(str(exc)) from None
    return config


def _deep_value_at(text: str) -> tuple[str, int]:
    """For the message only, after tomllib gave up: the key whose value opens more than
    MAX_NESTING brackets, and its line. A rough scan (quotes end at the line's end)."""
    depth, key, key_line = 0, "(top level)", 1
    for number, line in enumerate(text.splitlines(), 1):
        if depth == 0:
            name = re.match(r"\s*([A-Za-z0-9_.\-\"' ]+?)\s*=", line)
            if name:
                key, key_line = name.group(1).strip(), number
        quote = ""
        for ch in line:
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "\"'":
                quote = ch
            elif ch == "#":
                break
            elif ch in "[{":
                depth += 1
                if depth > MAX_NESTING:
                    return key, key_line
            elif ch in "]}":
                depth = max(depth - 1, 0)
    return key, key_line


def load_config(path: str | Path) -> AgentConfig:
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        key, line = _deep_value_at(text)
        raise ConfigError(f"{path}: {key}: arrays or inline tables nested too deeply to read "
                          f"(line {line}); fix: a device config needs at most {MAX_NESTING} "
                          "levels, remove the extra nesting") from None
    return parse_config(raw, str(path.resolve()))
