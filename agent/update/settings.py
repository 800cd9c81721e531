"""``[update]`` of the agent's config as the guard's and the monitor's settings."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.config import AgentConfig, load_key
from agent.errors import ConfigError
from agent.update.guard import GuardSettings
from agent.update.layout import UpdateLayout
from agent.update.service import ServiceControl, service_for
from contracts.device_config import UpdateConfig


def update_config(cfg: AgentConfig) -> UpdateConfig:
    if cfg.update is None:
        raise ConfigError(f"{cfg.source}: no [update] table: this device does not update "
                          "itself (add [update] with release_public_key)")
    return cfg.update


def guard_settings(cfg: AgentConfig) -> GuardSettings:
    up = update_config(cfg)
    raw = load_key(up.release_public_key, cfg, "update.release_public_key")
    if len(raw) != 32:
        raise ConfigError(f"{cfg.source}: update.release_public_key must be 32 bytes "
                          f"(an Ed25519 public key), not {len(raw)}")
    return GuardSettings(
        layout=UpdateLayout(cfg.path(up.root)),
        release_key=Ed25519PublicKey.from_public_bytes(raw),
        ca_file=cfg.path(up.ca_file) if up.ca_file else None,
        confirm_timeout_s=up.confirm_timeout_s,
        dependency_site=Path(up.dependency_site) if up.dependency_site else None)


def service_of(cfg: AgentConfig) -> ServiceControl:
    up = update_config(cfg)
    scheme, _, rest = up.service.partition(":")
    return service_for(f"{scheme}:{cfg.path(rest)}" if scheme == "process" else up.service)
