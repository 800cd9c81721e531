"""Remote configuration (docs/protocol.md, "Desired config"; docs/technician.md, "Remote
configuration"): the bridge keeps a desired config per device and sends it signed by the
tenant's key; the device checks it with the same schema as ``edge-agent check-config``,
applies it and reports what it runs.

What travels is the device config *without* what belongs to the device alone:

- ``[mqtt]``, ``data_dir`` and ``[control]`` are never sent (the broker connection and its
  credentials, the paths of the store and the socket): the device keeps its own, and a
  desired config that names them is refused with the reason.
- ``[keys]`` may be left out (the device keeps its own keys), or given as ``file:``
  references to key files already on the device. A secret in clear (``base64:``/``hex:``
  in ``[keys]``, or a back-end option named like a password, token, secret or key) is
  refused: secrets never travel in the desired config.

This module is the one place both sides take these rules from.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.device_config import MAX_NESTING, DeviceConfigError, check_device_config

KIND: Literal["device-config"] = "device-config"
MAX_CONFIG_BYTES = 256 * 1024  # the signed message, as the device takes it
MAX_DESIRED_BYTES = 160 * 1024  # the config as JSON: base64 in the envelope adds a third
# sections the device keeps from its own config; why, in the words a technician reads
DEVICE_LOCAL: dict[str, str] = {
    "mqtt": "the broker connection and its credentials are set on the device only "
            "(edge-agent provision)",
    "data_dir": "the store's folder is set on the device only",
    "control": "the control socket is set on the device only",
    "source": "not a config key",
}
# option names that hold a secret wherever they appear (reader and printer options ...)
_SECRET_NAME = re.compile(r"(password|passwd|passphrase|secret|token|private|(^|_)key)$",
                          re.IGNORECASE)
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class DesiredConfig(BaseModel):
    """The signed payload on the device's config topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    v: Literal[1]
    kind: Literal["device-config"]
    tenant: str = Field(pattern=_ID)
    device: str = Field(pattern=_ID)
    version: int = Field(ge=1)
    issued_ms: int = Field(ge=0)
    config: dict[str, Any]


def desired_payload(tenant: str, device: str, version: int, issued_ms: int,
                    config: dict[str, Any]) -> dict[str, Any]:
    return DesiredConfig(v=1, kind=KIND, tenant=tenant, device=device, version=version,
                         issued_ms=issued_ms, config=config).model_dump()


def _depth_over(raw: Any, limit: int) -> bool:
    """Iterative: a recursive walk would hit Python's own limit first."""
    stack: list[tuple[Any, int]] = [(raw, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack += [(v, depth + 1) for v in node.values()]
        elif isinstance(node, list):
            stack += [(v, depth + 1) for v in node]
    return False


def _drop_nulls(value: Any) -> Any:
    """JSON null means "the default" here; TOML has no null, so it is left out."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value if v is not None]
    return value


def secrets_in_clear(raw: dict[str, Any]) -> list[str]:
    """The key paths of secrets given in clear (anything but a ``file:`` reference)."""
    found: list[str] = []
    keys = raw.get("keys")
    if isinstance(keys, dict):
        found += [f"keys.{name}" for name, value in keys.items()
                  if not (isinstance(value, str) and value.startswith("file:"))]
    stack: list[tuple[Any, str]] = [(v, k) for k, v in raw.items() if k != "keys"]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            for name, value in node.items():
                path = f"{where}.{name}"
                if (_SECRET_NAME.search(str(name)) and isinstance(value, str)
                        and not value.startswith("file:")):
                    found.append(path)
                else:
                    stack.append((value, path))
        elif isinstance(node, list):
            stack += [(v, f"{where}[{i}]") for i, v in enumerate(node)]
    return sorted(found)


def check_desired_config(raw: Any, tenant: str, device: str) -> dict[str, Any]:
    """The desired config as it is stored and sent, or DeviceConfigError naming the key:
    a device-local section, a secret in clear, or anything the schema refuses."""
    source = f"desired config of {tenant}/{device}"
    if not isinstance(raw, dict):
        raise DeviceConfigError(f"{source}: (top level): must be a table of keys")
    if _depth_over(raw, MAX_NESTING):
        raise DeviceConfigError(f"{source}: nested more than {MAX_NESTING} levels deep; a "
                                "device config needs only a few levels of tables and arrays")
    config: dict[str, Any] = _drop_nulls(raw)
    size = len(json.dumps(config, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_DESIRED_BYTES:
        raise DeviceConfigError(f"{source}: {size} bytes is more than the {MAX_DESIRED_BYTES} "
                                "a desired config may have")
    for name in ("tenant", "device"):
        given = config.pop(name, None)
        wanted = tenant if name == "tenant" else device
        if given is not None and given != wanted:
            raise DeviceConfigError(f"{source}: {name}: is '{given}', but the config is for "
                                    f"'{wanted}'; leave it out (the bridge fills it in)")
    local = [name for name in DEVICE_LOCAL if name in config]
    if local:
        raise DeviceConfigError("\n".join(
            f"{source}: {name}: {DEVICE_LOCAL[name]}; leave it out of the desired config"
            for name in local))
    clear = secrets_in_clear(config)
    if clear:
        raise DeviceConfigError("\n".join(
            f"{source}: {path}: a secret in clear is never sent to a device; put it in a "
            "key file on the device and give 'file:/path', or leave [keys] out (the device "
            "keeps its own)" for path in clear))
    stand_in = {"credential_hmac_key": "base64:" + base64.b64encode(b"x" * 32).decode()}
    if config.get("terminals"):
        stand_in["device_signing_key"] = "base64:" + base64.b64encode(b"y" * 32).decode()
    check_device_config({**config, "tenant": tenant, "device": device,
                         "keys": config.get("keys") or stand_in}, source=source)
    return config


def merge_desired(desired: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The device's whole config: the desired one, with what the device keeps of its own
    (identity, the device-local sections, its keys unless the desired config names key
    files)."""
    merged = {k: v for k, v in desired.items() if k not in DEVICE_LOCAL}
    for name in ("tenant", "device", *DEVICE_LOCAL):
        if name in current:
            merged[name] = current[name]
    if "keys" not in desired and "keys" in current:
        merged["keys"] = current["keys"]
    return merged
