"""The factories of the agent's parts: its store and outbox, the access service, the
peripherals, the time clock, the local HTTP server, the POS runtime and the print queue.

Every way of building an agent goes through these — the daemon (``agent/assembly.py``
for ``edge-agent run`` and the fleet simulator) and the benchmarks, which build only the
parts they measure — so what is measured is what runs at a gate.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agent.access.model import SiteRules
from agent.access.service import AccessService, Clock, utc_now
from agent.attendance.pin_guard import PinGuard
from agent.attendance.time_clock import TimeClock
from agent.config import AgentConfig, load_key
from agent.errors import ConfigError
from agent.live_feed import LiveFeed
from agent.store.local_store import Durability, LocalStore
from agent.store.outbox import Outbox
from drivers.errors import DriverError
from drivers.protocols import CardReader, Display, Gate, Printer
from drivers.registry import Role, open_peripheral

if TYPE_CHECKING:  # FastAPI/uvicorn and the POS stack load only when a config uses them
    from agent.local_http import LocalHttpServer
    from agent.pos.pos_runtime import PosRuntime
    from agent.print_queue import PrintQueue


# -- the decision core -------------------------------------------------------------------

def site_rules(config: AgentConfig) -> SiteRules:
    p = config.site_policy
    return SiteRules(
        tz=config.zone,
        anti_passback=p.anti_passback,
        reentry_after=timedelta(seconds=p.reentry_after_s),
        waiver_required=p.waiver_required,
        waiver_current_since=p.waiver_current_since,
        waiver_current_version=p.waiver_current_version,
        occupancy_limit=p.occupancy_limit,
        presence_expiry=timedelta(hours=p.presence_expiry_h),
        ticket_gate_price_cents=p.ticket_gate_price_cents,
    )


def open_store(path: str | Path, durability: Durability, tenant: str, device: str
               ) -> tuple[LocalStore, Outbox]:
    """The SQLite store and the outbox of events written into it."""
    store = LocalStore(path, durability)
    return store, Outbox(store, tenant, device)


def access_service(store: LocalStore, outbox: Outbox, rules: SiteRules, hmac_key: bytes,
                   public_key: Ed25519PublicKey | None = None, *, clock: Clock = utc_now,
                   repeat_window_s: float | None = None) -> AccessService:
    """The access engine over the store (``repeat_window_s`` only for benchmarks, which
    tap the same card again and again)."""
    if repeat_window_s is None:
        return AccessService(store, outbox, rules, hmac_key, public_key, clock=clock)
    return AccessService(store, outbox, rules, hmac_key, public_key, clock=clock,
                         repeat_window_s=repeat_window_s)


def access_service_for(config: AgentConfig, store: LocalStore, outbox: Outbox,
                       clock: Clock = utc_now) -> AccessService:
    public = config.tenant_public_key()
    service = access_service(store, outbox, site_rules(config), config.hmac_key(),
                             Ed25519PublicKey.from_public_bytes(public) if public else None,
                             clock=clock)
    service.site_id = config.site  # printed tickets are bound to a site (docs/vouchers.md)
    return service


# -- peripherals -------------------------------------------------------------------------

@dataclass(slots=True)
class Peripherals:
    readers: dict[str, CardReader] = field(default_factory=dict)
    gates: dict[str, Gate] = field(default_factory=dict)
    displays: dict[str, Display] = field(default_factory=dict)
    printers: dict[str, Printer] = field(default_factory=dict)


# peripheral options that hold a secret; read like the config's keys ('file:' 0600 key
# file with base64 inside, or 'base64:'/'hex:'), so the back-end gets bytes
SECRET_OPTIONS = {"scbk": "edge-agent osdp-install --reader {id}"}


def peripheral_options(config: AgentConfig, role: str, cfg: Any) -> dict[str, Any]:
    options: dict[str, Any] = cfg.options()
    for name, how in SECRET_OPTIONS.items():
        value = options.get(name)
        if isinstance(value, str):
            try:
                options[name] = load_key(value, config, f"{role}s.{cfg.id}.{name}")
            except ConfigError as exc:
                raise ConfigError(f"{exc} (set it with: {how.format(id=cfg.id)})") from None
    return options


def open_peripherals(config: AgentConfig) -> Peripherals:
    """Construct every back-end of the config, or raise ConfigError naming the first that
    cannot be opened. Nothing is started here."""
    found = Peripherals()
    plan: list[tuple[Role, Any, dict[str, Any]]] = [
        ("display", d, found.displays) for d in config.displays
    ]
    plan += [("gate", g, found.gates) for g in config.gates]
    plan += [("printer", p, found.printers) for p in config.printers]
    plan += [("reader", r, found.readers) for r in config.readers]
    for role, cfg, target in plan:
        try:
            target[cfg.id] = open_peripheral(role, cfg.id, cfg.url,
                                             peripheral_options(config, role, cfg))
        except DriverError as exc:
            raise ConfigError(f"{config.source}: {role} '{cfg.id}' ({cfg.url}): {exc}") from exc
    return found


# -- time clock, local web server, POS, print queue ---------------------------------------

@dataclass(frozen=True, slots=True)
class PunchClock:
    time_clock: TimeClock
    chain_public_key: str  # base64 of the key that signs the punch chain


def time_clock_for(config: AgentConfig, store: LocalStore, outbox: Outbox, feed: LiveFeed,
                   access: AccessService, clock: Clock = utc_now) -> PunchClock | None:
    """The time clock of the config's terminals (None without terminals)."""
    if not config.terminals:
        return None
    signing = config.device_signing_key()
    assert signing is not None  # config validation requires it with terminals
    chain_key = Ed25519PrivateKey.from_private_bytes(signing)
    policy = config.pin_policy
    time_clock = TimeClock(
        store, outbox, feed, config.terminals, config.hmac_key(), access.public_key,
        chain_key, config.zone,
        PinGuard(store, policy.max_failures, policy.lock_minutes,
                 policy.terminal_failures_per_minute),
        clock,
    )
    return PunchClock(time_clock,
                      base64.b64encode(chain_key.public_key().public_bytes_raw()).decode())


def local_http_for(config: AgentConfig, time_clock: TimeClock | None, feed: LiveFeed,
                   link_online: Callable[[], bool | None]) -> LocalHttpServer | None:
    """The agent's own web server ([local_http]), with the time-clock kiosk on it."""
    if config.local_http is None:
        return None
    from agent.local_http import LocalHttpServer

    http = LocalHttpServer(config.local_http.bind, config.local_http.port)
    if time_clock is not None:
        from agent.attendance.kiosk import make_kiosk_router

        http.add_router(make_kiosk_router(time_clock, feed, link_online))
    return http


def pos_runtime_for(config: AgentConfig, store: LocalStore, outbox: Outbox,
                    printers: dict[str, Printer], http: LocalHttpServer | None,
                    displays: Mapping[str, Display] | None = None) -> PosRuntime | None:
    """The POS receipt printer ([pos]); needs the printers, and adds its router before the
    HTTP server starts."""
    if config.pos is None:
        return None
    from agent.pos.pos_runtime import PosRuntime

    return PosRuntime(config, store, outbox, printers, http=http, displays=displays)


def print_queue_for(store: LocalStore, printers: Mapping[str, Printer]) -> PrintQueue | None:
    """Documents other than receipts (record cards…): kept and retried until printed."""
    if not printers:
        return None
    from agent.print_queue import PrintQueue

    return PrintQueue(store, printers)
