"""Staged rollout of a channel's release to one tenant's devices.

The office starts a rollout at a share of the fleet (say 10 %), widens it (then 100 %),
pauses it (no device is added; offers already made stay) or rolls it back (every device
that was offered the release is offered the previous version, marked ``rollback``).
Which devices come first is a stable order (SHA-256 of the version and the device id),
so widening keeps the devices already chosen and each release starts on other devices.

The state is one JSON file per tenant and channel in the release folder; the offers are
retained messages on each device's ``{base}/release`` topic.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from cloud_bridge.releases.store import ReleaseStore
from contracts.release_manifest import ReleaseOffer, version_key
from contracts.topics import DeviceTopics


class RetainedPublisher(Protocol):
    def publish(self, topic: str, payload: bytes, retain: bool = False) -> Any: ...


@dataclass(frozen=True, slots=True)
class Rollout:
    tenant: str
    channel: str
    version: str
    previous: str | None
    share: float  # 0 < share <= 1
    paused: bool = False
    rolled_back: bool = False
    offered: dict[str, str] = field(default_factory=dict)  # device -> version offered
    offered_ms: int = field(default_factory=lambda: int(time.time() * 1000))


def order(version: str, devices: list[str]) -> list[str]:
    return sorted(devices, key=lambda d: hashlib.sha256(f"{version}/{d}".encode()).digest())


def chosen(rollout: Rollout, devices: list[str]) -> list[str]:
    n = math.ceil(rollout.share * len(devices))
    return order(rollout.version, devices)[:n]


class RolloutControl:
    def __init__(self, folder: Path, publisher: RetainedPublisher, base_url: str,
                 prefix: str = "es/v1") -> None:
        self.folder = folder
        self.publisher = publisher
        self.base_url = base_url.rstrip("/")
        self.prefix = prefix

    def _path(self, tenant: str, channel: str) -> Path:
        return self.folder / f"rollout-{tenant}-{channel}.json"

    def load(self, tenant: str, channel: str) -> Rollout | None:
        try:
            return Rollout(**json.loads(self._path(tenant, channel).read_text()))
        except FileNotFoundError:
            return None

    def _save(self, rollout: Rollout) -> Rollout:
        path = self._path(rollout.tenant, rollout.channel)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(rollout)))
        os.replace(tmp, path)
        return rollout

    def _offer(self, rollout: Rollout, device: str, version: str, rollback: bool) -> None:
        offer = ReleaseOffer(channel=rollout.channel, version=version,  # type: ignore[arg-type]
                             manifest_url=f"{self.base_url}/releases/{rollout.channel}/"
                                          f"{version}/manifest.json",
                             rollback=rollback, offered_ms=rollout.offered_ms)
        topic = DeviceTopics(self.prefix, rollout.tenant, device).release
        self.publisher.publish(topic, offer.model_dump_json().encode(), retain=True)

    def start(self, tenant: str, channel: str, version: str, share: float,
              devices: list[str]) -> Rollout:
        if not 0 < share <= 1:
            raise ValueError(f"share {share}: give a fraction above 0 and at most 1 (0.1 = 10 %)")
        old = self.load(tenant, channel)
        if old is not None:
            previous = old.previous if old.rolled_back else old.version
        else:  # the first rollout: the newest published release below this one
            older = [v for v in ReleaseStore(self.folder).versions(channel)
                     if version_key(v) < version_key(version)]
            previous = older[-1] if older else None
        rollout = Rollout(tenant, channel, version, previous, share)
        return self._push(rollout, devices)

    def widen(self, tenant: str, channel: str, share: float, devices: list[str]) -> Rollout:
        rollout = self._current(tenant, channel)
        if share < rollout.share:
            raise ValueError(f"share {share} is below the current {rollout.share}: a rollout "
                             "only widens (pause or roll back instead)")
        return self._push(replace(rollout, share=share, paused=False), devices)

    def pause(self, tenant: str, channel: str) -> Rollout:
        return self._save(replace(self._current(tenant, channel), paused=True))

    def roll_back(self, tenant: str, channel: str) -> Rollout:
        rollout = self._current(tenant, channel)
        previous = rollout.previous
        if previous is None:
            raise ValueError(f"{channel} {rollout.version} has no previous release to go back to")
        rollout = replace(rollout, rolled_back=True, paused=True,
                          offered_ms=int(time.time() * 1000))
        for device in rollout.offered:
            self._offer(rollout, device, previous, rollback=True)
        return self._save(replace(rollout, offered=dict.fromkeys(rollout.offered, previous)))

    def _current(self, tenant: str, channel: str) -> Rollout:
        rollout = self.load(tenant, channel)
        if rollout is None:
            raise ValueError(f"no rollout on {channel} for {tenant}: start one first")
        return rollout

    def _push(self, rollout: Rollout, devices: list[str]) -> Rollout:
        offered = dict(rollout.offered)
        for device in chosen(rollout, devices):
            if offered.get(device) != rollout.version:
                self._offer(rollout, device, rollout.version, rollback=False)
                offered[device] = rollout.version
        return self._save(replace(rollout, offered=offered))
