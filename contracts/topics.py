"""Topic names of docs/protocol.md, in one place for the agent and the bridge."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "es/v1"
COMMAND_NAMES = ("open", "reload", "resend-state")


@dataclass(frozen=True, slots=True)
class DeviceTopics:
    prefix: str
    tenant: str
    device: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.tenant}/{self.device}"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def ack(self) -> str:
        return f"{self.base}/ack"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    def cmd(self, name: str) -> str:
        return f"{self.base}/cmd/{name}"

    @property
    def cmd_wildcard(self) -> str:
        return f"{self.base}/cmd/+"

    @property
    def release(self) -> str:
        """Retained: the software release offered to this device (contracts/release_manifest.py);
        an empty retained message withdraws it."""
        return f"{self.base}/release"

    @property
    def cmd_result(self) -> str:
        return f"{self.base}/cmd-result"

    @property
    def members_request(self) -> str:
        return f"{self.base}/members/request"

    @property
    def members_sync(self) -> str:
        return f"{self.base}/members/sync"

    @property
    def members_changes(self) -> str:
        return tenant_changes_topic(self.prefix, self.tenant)

    @property
    def members_version(self) -> str:
        return tenant_version_topic(self.prefix, self.tenant)


def tenant_changes_topic(prefix: str, tenant: str) -> str:
    return f"{prefix}/{tenant}/members/changes"


def tenant_version_topic(prefix: str, tenant: str) -> str:
    """Retained, signed: the bridge's current membership version (docs/protocol.md)."""
    return f"{prefix}/{tenant}/members/version"


def split_device_topic(prefix: str, topic: str) -> tuple[str, str, str] | None:
    """'es/v1/t/d/events' -> ('t', 'd', 'events'); None if it is not a device topic."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1:].split("/", 2)
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


# -- remote configuration (issue 21, item 2) ------------------------------------------

def device_config_topic(prefix: str, tenant: str, device: str) -> str:
    """Retained, signed by the tenant's key: the device's desired config
    (contracts/remote_config.py)."""
    return f"{prefix}/{tenant}/{device}/config/desired"


# -- site presence between the devices of one site (docs/multi_gate.md) -----------------

def site_presence_topic(prefix: str, tenant: str, device: str) -> str:
    """A device's presence changes (signed facts, contracts/site_presence.py), on the
    site broker; every device of the site reads ``site_presence_wildcard``."""
    return f"{prefix}/{tenant}/{device}/site/presence"


def site_alive_topic(prefix: str, tenant: str, device: str) -> str:
    """Retained "up"; the device's last will sets "down" when its connection is lost."""
    return f"{prefix}/{tenant}/{device}/site/alive"


def site_presence_wildcard(prefix: str, tenant: str) -> str:
    return f"{prefix}/{tenant}/+/site/presence"


def site_alive_wildcard(prefix: str, tenant: str) -> str:
    return f"{prefix}/{tenant}/+/site/alive"


# -- till catalogue (issue 22) --------------------------------------------------------

def till_catalogue_topic(prefix: str, tenant: str) -> str:
    """Retained, signed by the tenant's key: the tenant's newest till catalogue
    (contracts/till_catalogue.py); devices read it, only bridges write it."""
    return f"{prefix}/{tenant}/till/catalogue"
