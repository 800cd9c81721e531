"""Software updates on the simulated fleet (bench/rollout_bench.py): every simulated
device takes its release offer from its own retained topic, downloads the release over
HTTPS, checks the signature and every hash, switches its own ``current`` symlink, is
restarted, and is judged by the new build's own self-test — or rolls back.

What differs from a real device, because the fleet's agents share one process:
- the guard runs in a thread of this process, not as a process of its own;
- "restart" stops the device's in-process agent and starts it again, reporting the
  version its ``current`` points at (the code in this process does not change);
- the health confirmation runs ``python -m agent.update selftest`` with the *new*
  environment's interpreter on the device's config (agent/update/probes.py), so a broken
  build fails on its own code;
- the devices share one store of environments (``envs`` is a symlink), so a version is
  pip-installed once per machine, not a hundred times.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import tomli_w

from agent.assembly import RunningAgent, start_agent
from agent.config import AgentConfig, parse_config
from agent.update.guard import HealthProbe, apply, resume
from agent.update.layout import UpdateLayout
from agent.update.probes import SelfTestProbe
from agent.update.settings import guard_settings
from agent.update.trial import GuardVerb
from contracts.release_manifest import parse_offer
from simulators.fleet import FLEET_PARTS, Fleet, FleetSpec, device_config

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FleetUpdateSpec:
    release_public_key: str  # "base64:..."
    ca_file: Path
    dependency_site: Path
    shared_envs: Path  # one store of environments for every simulated device
    confirm_timeout_s: float = 30.0
    parallel_selftests: int = 4  # self-test processes at once (the host's CPUs are shared)


class LimitedProbe:
    """A probe that runs at most N at once across the fleet."""

    def __init__(self, probe: HealthProbe, slots: threading.Semaphore) -> None:
        self.probe = probe
        self.slots = slots

    def check(self, version: str, since_ms: int) -> tuple[bool, str]:
        with self.slots:
            return self.probe.check(version, since_ms)


class FleetDevice:
    def __init__(self, fleet: UpdatingFleet, index: int, config: AgentConfig) -> None:
        self.fleet = fleet
        self.index = index
        self.config = config
        self.layout = UpdateLayout(Path(config.path(config.update.root)))  # type: ignore[union-attr]
        self.running: RunningAgent | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        parts = replace(FLEET_PARTS, guard_launcher=lambda _cfg: ThreadGuard(self),
                        software_version=self.layout.version_of(self.layout.current_env()))
        self.running = start_agent(self.config, parts)

    def restart(self) -> None:
        """The guard's Restarter for a simulated device (agent/update/service.py)."""
        with self._lock:
            if self.running is not None:
                self.running.stop()
            self.start()

    def stop(self) -> None:
        with self._lock:
            if self.running is not None:
                self.running.stop()
                self.running = None


class ThreadGuard:
    """The guard of one simulated device, in a thread of the fleet's process."""

    def __init__(self, device: FleetDevice) -> None:
        self.device = device

    def launch(self, verb: GuardVerb) -> int:
        thread = threading.Thread(target=self._run, args=(verb,), daemon=True,
                                  name=f"guard-{self.device.index}")
        thread.start()
        return thread.native_id or 0

    def _run(self, verb: GuardVerb) -> None:
        dev = self.device
        settings = guard_settings(dev.config)
        probe = LimitedProbe(SelfTestProbe(dev.layout, Path(dev.config.source)),
                             dev.fleet.selftest_slots)
        try:
            if verb == "apply":
                apply(settings, parse_offer(dev.layout.offer_path.read_bytes()), dev, probe)
            else:
                resume(dev.layout, dev, probe)
        except Exception:
            log.exception("update guard of device %d failed", dev.index)
        running = dev.running
        if running is not None and running.daemon.updates is not None:
            running.daemon.updates.report_outcome()  # the event goes up at once
            if running.link is not None:
                running.link.wake.set()


class UpdatingFleet(Fleet):
    def __init__(self, spec: FleetSpec, updates: FleetUpdateSpec) -> None:
        super().__init__(spec)
        self.updates = updates
        self.devices: list[FleetDevice] = []
        self.selftest_slots = threading.Semaphore(updates.parallel_selftests)

    def device_config(self, index: int) -> dict[str, Any]:
        raw = device_config(self.spec, index)
        data = Path(raw["data_dir"])
        raw["update"] = {
            "root": str(data / "opt"), "channel": "stable",
            "release_public_key": self.updates.release_public_key,
            "ca_file": str(self.updates.ca_file),
            "confirm_timeout_s": self.updates.confirm_timeout_s,
            "service": "process:unused.pid",  # replaced: ThreadGuard and FleetDevice
            "dependency_site": str(self.updates.dependency_site)}
        return raw

    def prepare(self, first_env: Path) -> None:
        """Every device's update root: the shared envs, ``current`` at ``first_env``."""
        for i in range(self.spec.devices):
            raw = self.device_config(i)
            layout = UpdateLayout(Path(raw["update"]["root"]))
            layout.root.mkdir(parents=True, exist_ok=True)
            if not layout.envs.is_symlink():
                layout.envs.symlink_to(self.updates.shared_envs)
            layout.staging.mkdir(exist_ok=True)
            layout.point(layout.current, first_env)
            source = Path(raw["data_dir"]) / "agent.toml"  # the self-test reads it
            source.write_text(tomli_w.dumps(raw))

    def start(self) -> None:
        for i in range(self.spec.devices):
            raw = self.device_config(i)
            source = Path(raw["data_dir"]) / "agent.toml"
            device = FleetDevice(self, i, parse_config(raw, source=str(source)))
            device.start()
            self.devices.append(device)

    def versions(self) -> dict[str, str]:
        return {d.config.device: d.layout.version_of(d.layout.current_env())
                for d in self.devices}

    def stop(self) -> None:
        for device in self.devices:
            device.stop()
