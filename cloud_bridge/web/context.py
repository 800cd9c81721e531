"""Everything a web page handler needs, built once per app by ``mount_web``."""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from cloud_bridge.change_feed import ChangeFeed, Publisher
from cloud_bridge.notifications import Notifier
from cloud_bridge.tenant_keys import TenantKeyStore
from cloud_bridge.web.auth import WebAuth
from contracts.command_expiry import CommandLifetimes

# sites are in Slovenia; dates typed into forms and hours in charts are local time
LOCAL_TZ = ZoneInfo("Europe/Ljubljana")


@dataclass(frozen=True, slots=True)
class WebContext:
    engine: Engine
    keys: TenantKeyStore
    feed: ChangeFeed
    publisher: Publisher  # device commands
    prefix: str
    auth: WebAuth
    # server secret behind members' phone QR links (cloud_bridge/member_qr_links.py)
    member_link_key: bytes | None = None
    # how long a device command stays valid, per class (BridgeSettings)
    command_lifetimes: CommandLifetimes = field(default_factory=CommandLifetimes)
    # e-mail and SMS to people, through the durable outbox (cloud_bridge/notifications)
    notifier: Notifier | None = None
