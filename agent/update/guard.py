"""The guard: one update attempt from offer to outcome, journalled step by step.

downloading -> installing -> switched -> confirmed | rolled_back (or failed before the
switch). ``current`` only ever moves by an atomic rename, and only to a complete
environment, so a kill -9 at any step leaves a device that starts: the old version
before the switch, the new one after it (and the guard started again at the agent's next
start finishes the confirmation or rolls back, see :func:`resume`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent import fault_points
from agent.update.fetch import FetchError, fetch_release
from agent.update.install import InstallError, install_release
from agent.update.layout import Journal, UpdateLayout
from agent.update.service import Restarter, ServiceError
from contracts.release_manifest import CONFIG_SCHEMA_VERSION, ReleaseOffer, version_key

log = logging.getLogger(__name__)
POLL_S = 0.25


class HealthProbe(Protocol):
    def check(self, version: str, since_ms: int) -> tuple[bool, str]:
        """(healthy, detail) of ``version`` as reported since ``since_ms`` (wall clock)."""
        ...


@dataclass(frozen=True, slots=True)
class GuardSettings:
    layout: UpdateLayout
    release_key: Ed25519PublicKey
    ca_file: Path | None
    confirm_timeout_s: float
    dependency_site: Path | None


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie child of ours is not alive
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def refusal(offer: ReleaseOffer, running: str, journal: Journal | None) -> str | None:
    """Why this offer is not acted on, or None to go ahead."""
    if offer.version == running:
        return f"{running} is already running"
    if version_key(offer.version) < version_key(running) and not offer.rollback:
        return f"{offer.version} is older than {running} and the offer is not a rollback"
    if journal is not None and not journal.terminal and pid_alive(journal.guard_pid):
        return f"an update to {journal.to_version} is in progress"
    if (journal is not None and journal.to_version == offer.version
            and journal.state in ("rolled_back", "failed")
            and journal.started_ms >= offer.offered_ms):
        return f"{offer.version} already {journal.state.replace('_', ' ')} here: " \
               f"{journal.reason} (offer it again to retry)"
    return None


def _fail(layout: UpdateLayout, journal: Journal, reason: str) -> Journal:
    log.error("update to %s failed: %s", journal.to_version, reason)
    layout.prune(keep={p for p in (layout.current_env(), layout.previous_env()) if p})
    return layout.write_journal(journal.moved("failed", reason=reason))


def apply(settings: GuardSettings, offer: ReleaseOffer, service: Restarter,
          probe: HealthProbe) -> Journal:
    layout = settings.layout
    layout.ensure()
    current = layout.current_env()
    if current is None:
        raise FileNotFoundError(f"{layout.current} does not point at an installed environment")
    journal = layout.write_journal(Journal(
        "downloading", offer.version, layout.version_of(current), offer.channel,
        guard_pid=os.getpid(), from_env=str(current)))
    try:
        manifest = fetch_release(offer.manifest_url, settings.release_key, settings.ca_file,
                                 layout.staging)
    except FetchError as exc:
        return _fail(layout, journal, f"download: {exc}")
    if manifest.version != offer.version or manifest.channel != offer.channel:
        return _fail(layout, journal, f"the signed manifest is {manifest.channel} "
                     f"{manifest.version}, the offer said {offer.channel} {offer.version}")
    if manifest.min_config_schema > CONFIG_SCHEMA_VERSION:
        return _fail(layout, journal, f"{manifest.version} needs config schema "
                     f"{manifest.min_config_schema}; this device has {CONFIG_SCHEMA_VERSION}")
    journal = layout.write_journal(journal.moved("installing"))
    try:
        env = install_release(layout, manifest, layout.staging / manifest.version / "wheels",
                              settings.dependency_site)
    except InstallError as exc:
        return _fail(layout, journal, f"install: {exc}")
    fault_points.reached("update.switch")
    now = int(time.time() * 1000)
    journal = layout.write_journal(journal.moved(
        "switched", switched_ms=now, deadline_ms=now + int(settings.confirm_timeout_s * 1000)))
    layout.point(layout.previous, current)
    layout.point(layout.current, env)
    log.info("switched to %s; restarting the agent", manifest.version)
    try:
        service.restart()
    except ServiceError as exc:
        # the old agent still runs; it must not start the new version at its next start
        layout.point(layout.current, current)
        return _fail(layout, journal, f"restart: {exc}")
    return confirm_or_roll_back(layout, journal, service, probe)


def confirm_or_roll_back(layout: UpdateLayout, journal: Journal, service: Restarter,
                         probe: HealthProbe, sleep: Callable[[float], None] = time.sleep
                         ) -> Journal:
    assert journal.deadline_ms is not None and journal.switched_ms is not None
    detail = "no health report from the new version"
    while time.time() * 1000 < journal.deadline_ms:
        fault_points.reached("update.confirm")
        ok, detail = probe.check(journal.to_version, journal.switched_ms)
        if ok:
            log.info("%s confirmed healthy: %s", journal.to_version, detail)
            layout.prune(keep={p for p in (layout.current_env(), layout.previous_env()) if p})
            return layout.write_journal(journal.moved("confirmed", reason=detail))
        sleep(POLL_S)
    timeout_s = (journal.deadline_ms - journal.switched_ms) / 1000
    reason = f"{journal.to_version} not healthy within {timeout_s:.0f} s: {detail}"
    return roll_back(layout, journal, service, reason)


def roll_back(layout: UpdateLayout, journal: Journal, service: Restarter,
              reason: str) -> Journal:
    back = Path(journal.from_env)
    if not layout.is_installed(back):
        return layout.write_journal(journal.moved(
            "failed", reason=f"{reason}; cannot roll back: {back} is gone"))
    log.error("rolling back to %s: %s", journal.from_version, reason)
    layout.point(layout.current, back)
    try:
        service.restart()
    except ServiceError as exc:  # `current` is back: the next start runs the old version
        reason = f"{reason}; restarting the old version failed: {exc}"
    return layout.write_journal(journal.moved("rolled_back", reason=reason))


def resume(layout: UpdateLayout, service: Restarter, probe: HealthProbe) -> Journal | None:
    """Finish an attempt whose guard died (power cut, kill -9)."""
    journal = layout.read_journal()
    if journal is None or journal.terminal:
        return journal
    journal = layout.write_journal(journal.moved(journal.state, guard_pid=os.getpid()))
    if journal.state != "switched":  # died before the switch: current was never touched
        return _fail(layout, journal, f"interrupted while {journal.state} (power cut?)")
    # make the device run what `current` says, then judge it as if just switched
    service.restart()
    return confirm_or_roll_back(layout, journal, service, probe)
