"""Builds the device's MQTT link (sync/agent_link.py) from the agent's config and daemon.

sync/ knows nothing of the agent: this maps ``[mqtt]`` into the link's settings
(TLS files resolved against the config's folder), opens the link's own store connection
(agent/store/sync_store.py), registers the daemon's command handlers
(agent/remote_commands.py) and adapts the daemon to the link's :class:`LinkHost`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.config import AgentConfig, MqttConfig
from agent.remote_commands import CommandedDevice, daemon_commands
from agent.store.sync_store import SyncStore
from sync.agent_link import AgentLink, AgentLinkSettings, DeviceStatus
from sync.mqtt_client import BrokerSettings

if TYPE_CHECKING:
    from agent.access.service import AccessService
    from agent.pos.pos_runtime import PosRuntime
    from agent.remote_config import ConfigApplier
    from agent.update.trial import UpdateMonitor

log = logging.getLogger(__name__)


class LinkedDaemon(CommandedDevice, Protocol):
    """What the link's assembly uses of the daemon."""

    link_online: bool | None
    updates: UpdateMonitor | None
    pos: PosRuntime | None

    @property
    def config(self) -> AgentConfig: ...

    @property
    def access(self) -> AccessService: ...

    def status(self) -> dict[str, Any]: ...


class DaemonLinkHost:
    """The daemon as the link's LinkHost."""

    def __init__(self, daemon: LinkedDaemon, applier: ConfigApplier | None = None) -> None:
        self.daemon = daemon
        self.applier = applier

    def set_link_online(self, online: bool) -> None:
        self.daemon.link_online = online

    def link_status(self) -> DeviceStatus:
        status = self.daemon.status()
        return DeviceStatus(version=status["version"], site=status["site"],
                            peripherals=status["peripherals"],
                            chain_public_key=status.get("chain_public_key"),
                            config=self.applier.status() if self.applier else None,
                            update=status.get("update"),
                            till_catalogue=status.get("till_catalogue"))

    def membership_changed(self) -> None:
        self.daemon.access.forget_recent()

    def release_offered(self, payload: bytes) -> None:
        updates = self.daemon.updates
        if updates is None:
            log.info("a release was offered, but this device has no [update] table")
            return
        updates.offer(payload)


def link_settings(cfg: AgentConfig, mqtt: MqttConfig) -> AgentLinkSettings:
    """``[mqtt]`` as the link's settings; relative TLS paths against the config's folder."""

    def resolved(value: str | None) -> str | None:
        return str(cfg.path(value)) if value else None

    broker = BrokerSettings(
        host=mqtt.host, port=mqtt.port, client_id=f"edge-{cfg.tenant}-{cfg.device}",
        username=mqtt.username, password=mqtt.password, tls_ca=resolved(mqtt.tls_ca),
        tls_cert=resolved(mqtt.tls_cert), tls_key=resolved(mqtt.tls_key),
        keepalive_s=mqtt.keepalive_s, protocol=mqtt.protocol)
    return AgentLinkSettings(broker=broker, tenant=cfg.tenant, device=cfg.device,
                             topic_prefix=mqtt.topic_prefix, batch_size=mqtt.batch_size,
                             subscribe_qos=mqtt.subscribe_qos)


def build_agent_link(daemon: LinkedDaemon, mqtt: MqttConfig,
                     applier: ConfigApplier | None = None, **tuning: Any) -> AgentLink:
    """The link for ``daemon``; ``tuning`` goes to :class:`AgentLink` (ack_timeout_s,
    state_interval_s, max_backoff_s, ...). With ``applier`` the link takes the device's
    desired configs (remote configuration) and reports the applier's outcome."""
    cfg = daemon.config
    public = cfg.tenant_public_key()
    feed = daemon.pos.catalogue_feed if daemon.pos is not None else None
    store = SyncStore(cfg.store_path, cfg.durability, cfg.tenant, cfg.device)
    link = AgentLink(
        DaemonLinkHost(daemon, applier), store, link_settings(cfg, mqtt),
        lambda resend_state: daemon_commands(daemon, resend_state),
        Ed25519PublicKey.from_public_bytes(public) if public else None,
        on_desired_config=applier.offer if applier else None,
        on_till_catalogue=feed.offer if feed else None,
        **tuning,
    )
    if applier is not None:
        applier.on_change = link.request_state
    if feed is not None:
        feed.on_change = link.request_state
    return link
