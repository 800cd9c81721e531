"""The device config's schema (one TOML file per device), validated completely before
anything starts. A contract: the agent reads its config with it, and the bridge checks
the configs it hands out in enrolment codes with the same schema.

Errors name the file, the key path (``gates[1].zone``) and what was expected, so a
technician can fix the file without reading code. Key files (``file:`` values) are the
agent's to read (agent/config.py); here only inline keys are decoded.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contracts.errors import ContractError
from contracts.pos_config import PosConfig


class DeviceConfigError(ContractError):
    """The device config cannot be used; the message names the source and the key."""


_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# a Unix socket's path (sun_path) holds 108 bytes with the closing NUL
MAX_SOCKET_PATH_BYTES = 107
# a device config needs a few levels (tables, arrays of tables, back-end options)
MAX_NESTING = 16
Ident = Annotated[str, Field(pattern=_ID)]


def _os_path(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL character, which no file path can hold")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeyMaterial(_Strict):
    """Secrets and public keys. Values are 'base64:…', 'hex:…' or 'file:/path' (base64 inside)."""

    credential_hmac_key: str = Field(
        description="per-tenant key for hashing card UIDs (HMAC-SHA256), at least 16 bytes"
    )
    tenant_public_key: str | None = Field(
        default=None, description="Ed25519 public key (32 bytes) that signs membership data"
    )
    device_signing_key: str | None = Field(
        default=None, description="this device's Ed25519 private key (32 bytes): signs the "
        "heads of the punch chain"
    )

    @field_validator("credential_hmac_key")
    @classmethod
    def _hmac_key_long_enough(cls, value: str) -> str:
        if not value.startswith("file:") and len(decode_key(value)) < 16:
            raise ValueError("must decode to at least 16 bytes")
        return value

    @field_validator("tenant_public_key")
    @classmethod
    def _public_key_32(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("file:") and len(decode_key(value)) != 32:
            raise ValueError("must decode to exactly 32 bytes (raw Ed25519 public key)")
        return value

    @field_validator("device_signing_key")
    @classmethod
    def _signing_key_32(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("file:") and len(decode_key(value)) != 32:
            raise ValueError("must decode to exactly 32 bytes (raw Ed25519 private key)")
        return value

    @field_validator("credential_hmac_key", "tenant_public_key", "device_signing_key")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("contains a NUL character; give 'base64:…', 'hex:…' or "
                             "'file:/path'")
        return value


class SitePolicy(_Strict):
    occupancy_limit: int | None = Field(default=None, ge=1)
    anti_passback: bool = False
    # after this long an entry no longer blocks the next entry (timed anti-passback)
    reentry_after_s: int = Field(default=0, ge=0)
    waiver_required: bool = False
    # the day the tenant's current waiver version took effect (set by the bridge when a
    # version is published): older signatures no longer admit (docs/waivers.md)
    waiver_current_since: date | None = None
    # its version id: a member whose record carries the signed version must have signed
    # this one (same-day precise); members without a version id keep the day rule
    waiver_current_version: int | None = Field(default=None, ge=1)
    # a person still "inside" after this long is assumed gone (for occupancy)
    presence_expiry_h: float = Field(default=12.0, gt=0)
    # a value voucher (contracts/ticket_token.py) at a gate pays this much for one entry;
    # None: gates refuse value vouchers (they are spent at the till; docs/vouchers.md)
    ticket_gate_price_cents: int | None = Field(default=None, ge=1)


class ReaderConfig(_Strict):
    model_config = ConfigDict(extra="allow", frozen=True)  # back-end options live here too
    id: Ident
    url: str = Field(min_length=2)
    # a reader serves a gate (access), a time-clock terminal (punches) or the till
    # ([pos.till]: a cashier's card signs in, a scanned barcode adds its product)
    gate: Ident | None = None
    terminal: Ident | None = None
    till: bool = False
    direction: Literal["in", "out"] = "in"

    @model_validator(mode="after")
    def _one_target(self) -> ReaderConfig:
        if sum((self.gate is not None, self.terminal is not None, self.till)) != 1:
            raise ValueError("give exactly one of 'gate', 'terminal' or 'till = true'")
        return self

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class GateConfig(_Strict):
    model_config = ConfigDict(extra="allow", frozen=True)
    id: Ident
    url: str = Field(min_length=2)
    zone: Ident = "main"
    pulse_ms: int = Field(default=500, ge=50, le=10_000)
    display: Ident | None = None
    # entry only with credentials that cannot be copied (NTAG 424 SUN cards, signed QR);
    # plain UIDs and static codes get SECURE_CARD_REQUIRED (docs/security.md)
    require_secure_card: bool = False

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class PeripheralConfig(_Strict):
    model_config = ConfigDict(extra="allow", frozen=True)
    id: Ident
    url: str = Field(min_length=2)

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class TerminalConfig(_Strict):
    """A time-clock terminal (E-EDC): readers punch here instead of opening a gate."""

    id: Ident
    display: Ident | None = None
    # how long the employee may change the suggested punch type before it is recorded
    choose_window_s: float = Field(default=4.0, ge=0.5, le=30)


class PinPolicy(_Strict):
    max_failures: int = Field(default=5, ge=1, le=20)  # per employee, then locked
    lock_minutes: int = Field(default=15, ge=1, le=1440)
    terminal_failures_per_minute: int = Field(default=10, ge=1, le=100)


class LocalHttpConfig(_Strict):
    """The agent's local web server: the time-clock kiosk page, health and metrics."""

    bind: str = "127.0.0.1"
    port: int = Field(default=8088, ge=0, le=65535)


class ControlConfig(_Strict):
    socket: Annotated[str, Field(min_length=1)] = "agent.sock"

    @field_validator("socket")
    @classmethod
    def _socket_path(cls, value: str) -> str:
        return _os_path(value)


class MqttConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    topic_prefix: str = "es/v1"
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    batch_size: int = Field(default=200, ge=1, le=5000)
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    username: str | None = None
    password: str | None = None
    # "3.1.1" for a broker without MQTT 5, e.g. a NATS cluster (docs/scale.md lists what
    # the device gives up); Mosquitto sites keep the default
    protocol: Literal["5", "3.1.1"] = "5"
    # QoS of the downlink subscriptions; 0 on a NATS cluster, which delivers what the
    # bridge publishes at QoS 0 anyway and spends a JetStream consumer on every QoS 1
    # subscription (docs/scale.md)
    subscribe_qos: Literal[0, 1] = 1


class SiteLinkConfig(_Strict):
    """``[site_link]``: the site broker the devices of one site share presence through
    (anti-passback and occupancy across gates while the cloud is away; docs/multi_gate.md)."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    topic_prefix: str = "es/v1"
    keepalive_s: int = Field(default=10, ge=2, le=600)
    # the other devices of the site: one of them not reachable = this device is cut off
    peers: list[Ident] = []
    # while cut off, an earlier tap blocks a pass-back for this long only (fallback rule)
    cut_off_passback_s: int = Field(default=300, ge=0)
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    username: str | None = None
    password: str | None = None


class UpdateConfig(_Strict):
    """``[update]``: signed software updates with automatic rollback (agent/update/)."""

    # holds envs/<version>/, the `current` and `previous` symlinks and the update journal;
    # inside the service's writable state folder (ProtectSystem=strict)
    root: Annotated[str, Field(min_length=1)] = "/var/lib/edge-agent/software"
    channel: Literal["stable", "beta"] = "stable"
    # the bridge's release-signing public key (not a tenant key): "base64:..." (32 bytes)
    release_public_key: Annotated[str, Field(min_length=8)]
    # CA that signed the bridge's HTTPS certificate; None = the system's CAs
    ca_file: str | None = None
    # how long a new version has to prove itself healthy before it is rolled back
    confirm_timeout_s: float = Field(default=120.0, ge=5.0, le=3600.0)
    # how the agent is restarted: "systemd:edge-agent.service" or "process:<pid file>"
    service: str = "systemd:edge-agent.service"
    # a site-packages folder of installed dependencies shared by every environment (a
    # .pth in the new environment); None = the release's wheel set carries them all
    dependency_site: str | None = None

    @field_validator("root", "ca_file", "dependency_site")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        return None if value is None else _os_path(value)

    @field_validator("service")
    @classmethod
    def _service(cls, value: str) -> str:
        scheme, _, rest = value.partition(":")
        if scheme not in ("systemd", "process") or not rest:
            raise ValueError(f"service '{value}' must be 'systemd:<unit>' or "
                             "'process:<pid file>'")
        return value


class DeviceConfig(_Strict):
    """One device's config as a whole (the TOML file); the agent adds key loading."""

    tenant: Ident
    device: Ident
    site: Ident
    data_dir: Annotated[str, Field(min_length=1)] = "data"
    timezone: str = "Europe/Ljubljana"
    # what the device's own screens, displays and printouts speak (contracts/i18n.py)
    language: Literal["sl", "en"] = "sl"
    durability: Literal["full", "normal"] = "full"
    keys: KeyMaterial
    site_policy: SitePolicy = SitePolicy()
    readers: list[ReaderConfig] = []
    gates: list[GateConfig] = []
    displays: list[PeripheralConfig] = []
    printers: list[PeripheralConfig] = []
    terminals: list[TerminalConfig] = []
    pin_policy: PinPolicy = PinPolicy()
    local_http: LocalHttpConfig | None = None
    control: ControlConfig = ControlConfig()
    mqtt: MqttConfig | None = None
    site_link: SiteLinkConfig | None = None
    pos: PosConfig | None = None
    update: UpdateConfig | None = None

    # where the file was read from; relative paths are resolved against its folder
    source: str = Field(default="<memory>", exclude=True)

    @field_validator("data_dir")
    @classmethod
    def _data_dir_path(cls, value: str) -> str:
        return _os_path(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "Europe": a folder
            raise ValueError(f"unknown time zone '{value}' (e.g. 'Europe/Ljubljana')") from exc
        return value

    @model_validator(mode="after")
    def _references_resolve(self) -> Self:
        for kind, items in (
            ("readers", self.readers),
            ("gates", self.gates),
            ("displays", self.displays),
            ("printers", self.printers),
            ("terminals", self.terminals),
        ):
            seen: set[str] = set()
            for item in items:
                if item.id in seen:
                    raise ValueError(f"{kind}: id '{item.id}' is used twice")
                seen.add(item.id)
        gate_ids = {g.id for g in self.gates}
        display_ids = {d.id for d in self.displays}
        terminal_ids = {t.id for t in self.terminals}
        for i, reader in enumerate(self.readers):
            if reader.terminal is not None:
                if reader.terminal not in terminal_ids:
                    raise ValueError(
                        f"readers[{i}].terminal: '{reader.terminal}' is not a terminal id "
                        f"(known: {', '.join(sorted(terminal_ids)) or 'none'})"
                    )
                continue
            if reader.till:
                if self.pos is None or self.pos.till is None:
                    raise ValueError(f"readers[{i}].till: this device has no [pos.till]")
                continue
            if reader.gate not in gate_ids:
                raise ValueError(
                    f"readers[{i}].gate: '{reader.gate}' is not a gate id "
                    f"(known: {', '.join(sorted(gate_ids)) or 'none'})"
                )
        shown: list[tuple[str, Sequence[GateConfig | TerminalConfig]]] = [
            ("gates", self.gates), ("terminals", self.terminals)]
        for kind, owners in shown:
            for i, owner in enumerate(owners):
                if owner.display is not None and owner.display not in display_ids:
                    raise ValueError(
                        f"{kind}[{i}].display: '{owner.display}' is not a display id "
                        f"(known: {', '.join(sorted(display_ids)) or 'none'})"
                    )
        if self.terminals and self.keys.device_signing_key is None:
            raise ValueError("keys.device_signing_key is required when terminals are "
                             "configured: it signs the punch chain")
        return self

    # -- resolved values -------------------------------------------------------------

    @property
    def base_dir(self) -> Path:
        return Path(self.source).parent if self.source != "<memory>" else Path.cwd()

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.base_dir / p

    @property
    def data_path(self) -> Path:
        return self.path(self.data_dir)

    @property
    def store_path(self) -> Path:
        return self.data_path / "agent.sqlite3"

    @property
    def socket_path(self) -> Path:
        p = Path(self.control.socket)
        return p if p.is_absolute() else self.data_path / p

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def decode_key(value: str) -> bytes:
    kind, sep, body = value.partition(":")
    if not sep:
        raise ValueError("expected 'base64:…', 'hex:…' or 'file:/path'")
    try:
        if kind == "base64":
            return base64.b64decode(body, validate=True)
        if kind == "hex":
            return bytes.fromhex(body)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"is not valid {kind}") from exc
    raise ValueError(f"unknown key encoding '{kind}:' (use base64:, hex: or file:)")


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _describe(errors: list[Any], source: str) -> str:
    lines = []
    for err in errors[:10]:
        msg = re.sub(r"^Value error, ", "", err["msg"])
        got = err.get("input")
        hint = ""
        if err["type"] == "extra_forbidden":
            msg = "unknown key (misspelt?)"
        elif err["loc"] and err["loc"][0] == "keys":
            pass  # never echo key material into logs or terminals
        elif err["type"] != "missing" and not isinstance(got, dict | list):
            hint = f" (got {got!r})"
        lines.append(f"{source}: {_loc(tuple(err['loc']))}: {msg}{hint}")
    more = len(errors) - 10
    if more > 0:
        lines.append(f"... and {more} more")
    return "\n".join(lines)


def _too_deep(raw: dict[str, Any]) -> str | None:
    """The key path of the first value nested deeper than MAX_NESTING, else None.
    Iterative: a recursive walk (or pydantic, or json) would hit Python's own limit."""
    stack: list[tuple[Any, str, int]] = [(raw, "", 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_NESTING:
            return where or "(top level)"
        if isinstance(node, dict):
            stack += [(v, f"{where}.{k}" if where else str(k), depth + 1)
                      for k, v in node.items()]
        elif isinstance(node, list):
            stack += [(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(node)]
    return None


def check_socket_path(config: DeviceConfig) -> None:
    size = len(os.fsencode(config.socket_path))
    if size > MAX_SOCKET_PATH_BYTES:
        raise DeviceConfigError(
            f"{config.source}: control.socket: the control socket path {config.socket_path} "
            f"is {size} bytes, more than a Unix socket allows ({MAX_SOCKET_PATH_BYTES}); "
            "fix: set control.socket to a shorter absolute path, e.g. "
            '"/run/edge-agent/agent.sock"')




ConfigT = TypeVar("ConfigT", bound=DeviceConfig)


def validate_device_config(raw: dict[str, Any], source: str,
                           model: type[ConfigT]) -> ConfigT:
    """The config as ``model`` (DeviceConfig or the agent's subclass of it);
    DeviceConfigError with every problem, one line each, when it breaks the schema."""
    deep = _too_deep(raw)
    if deep is not None:
        raise DeviceConfigError(f"{source}: {deep}: nested more than {MAX_NESTING} levels "
                                "deep; fix: a device config needs only a few levels of tables "
                                "and arrays, remove the extra nesting")
    try:
        return model.model_validate({**raw, "source": source})
    except ValidationError as exc:
        raise DeviceConfigError(_describe(exc.errors(), source)) from None


def check_device_config(raw: dict[str, Any], source: str = "<memory>") -> DeviceConfig:
    """Everything of the schema that can be checked away from the device (the bridge,
    before it hands a config out): the tables, the references, the socket path."""
    config = validate_device_config(raw, source, DeviceConfig)
    check_socket_path(config)
    return config
