"""Remote configuration on the device: applies the desired config the bridge sends
(contracts/remote_config.py), or rolls back and says why.

A desired config is taken only when it is signed by the device's tenant
(``keys.tenant_public_key``), is for this tenant and device, and is newer than the
version the device runs (a version that failed once is not tried again). Then:

1. it is merged with what the device keeps of its own (identity, ``[mqtt]``,
   ``data_dir``, ``[control]``, its keys) and checked with the schema of
   ``edge-agent check-config`` (key files included);
2. the running config is copied to ``<config>.previous`` (temp file, fsync, rename), the
   journal ``<config>.apply.json`` records the version as pending, and the new config
   replaces the file the same way;
3. the daemon reloads it (agent/daemon.py ``reload``: new peripherals open before the
   old ones stop) and must be healthy within the deadline: every peripheral up and a
   self-test tap answered;
4. otherwise the previous file comes back and the daemon reloads it.

The journal makes a kill -9 at any step safe: at start-up :func:`recover` finds a
pending version and puts ``<config>.previous`` back (written before the version was
marked pending), so the device starts with the config it ran before, and reports the
interrupted apply. The applied version and the last outcome go into the retained state
message (``config`` in docs/protocol.md).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import tomli_w
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from agent import fault_points
from agent.config import parse_config
from agent.daemon_ports import HealthSubject, peripherals_by_role
from agent.errors import EdgeError
from agent.health import SelfTestTap
from contracts.errors import BadInput, SignatureError
from contracts.remote_config import MAX_CONFIG_BYTES, DesiredConfig, merge_desired
from contracts.signed_envelope import verify_envelope
from drivers.errors import DriverError
from drivers.protocols import HealthState

log = logging.getLogger(__name__)

DEFAULT_DEADLINE_S = 20.0
HEADER = ("# written by edge-agent from the bridge's desired config version {version}; "
          "the config before it is in {previous}\n")


class ReloadableDevice(HealthSubject, Protocol):
    def reload(self) -> dict[str, Any]: ...


def previous_path(config: Path) -> Path:
    return config.with_name(config.name + ".previous")


def journal_path(config: Path) -> Path:
    return config.with_name(config.name + ".apply.json")


def write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, rename over ``path``, fsync the folder: a
    reader (or a restart) sees the old bytes or the new ones, never a mix."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def read_journal(config: Path) -> dict[str, Any]:
    try:
        data = json.loads(journal_path(config).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_journal(config: Path, journal: dict[str, Any]) -> None:
    write_atomic(journal_path(config), json.dumps(journal, sort_keys=True).encode())


def recover(config: Path) -> str | None:
    """At start-up, before the config is read: finish an apply that a stop cut short by
    putting the previous config back. Returns what was done, for the log."""
    journal = read_journal(config)
    pending = journal.get("pending")
    if not isinstance(pending, int):
        return None
    previous = previous_path(config)
    if previous.exists():
        write_atomic(config, previous.read_bytes())
    reason = (f"the agent stopped while applying version {pending}; it starts with the "
              "config it ran before")
    _write_journal(config, {**journal, "pending": None, "status": "rolled_back",
                            "attempted_version": pending, "reason": reason})
    return reason


class ConfigApplier:
    """Takes desired configs from the link (any thread) and applies them one at a time
    on a worker thread of its own, so the link never waits for a reload."""

    def __init__(self, config_path: Path, daemon: ReloadableDevice,
                 public_key: Ed25519PublicKey | None, *, tenant: str, device: str,
                 deadline_s: float = DEFAULT_DEADLINE_S) -> None:
        self.path = config_path
        self.daemon = daemon
        self.public_key = public_key
        self.tenant, self.device = tenant, device
        self.deadline_s = deadline_s
        self.on_change: Callable[[], None] = lambda: None
        self._journal = read_journal(config_path)
        # the last message that was not taken (unsigned, forged, another device's): kept
        # apart, so it never hides the outcome of the last real apply
        self._rejected: str | None = None
        self._lock = threading.Lock()
        self._queue: queue.Queue[DesiredConfig | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="config-apply", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(self.deadline_s + 10)

    def status(self) -> dict[str, Any]:
        """What the state message reports: the version running and the last outcome."""
        with self._lock:
            j = dict(self._journal)
        return {"applied_version": j.get("applied_version"),
                "status": "applying" if j.get("pending") else j.get("status"),
                "attempted_version": j.get("attempted_version"),
                "reason": j.get("reason"), "rejected": self._rejected}

    def _record(self, **changes: Any) -> None:
        with self._lock:
            self._journal = {**self._journal, **changes}
            _write_journal(self.path, self._journal)
        self.on_change()

    # -- receiving (the link's thread) ----------------------------------------------

    def offer(self, payload: bytes) -> None:
        """A message on the device's config topic: checked here, applied later."""
        if not payload:
            return  # the retained message was cleared
        try:
            desired = self._verified(payload)
        except (BadInput, SignatureError, ValidationError, ValueError) as exc:
            self._rejected = f"desired config refused: {str(exc).splitlines()[0]}"
            log.warning("%s", self._rejected)
            self.on_change()
            return
        with self._lock:
            applied = self._journal.get("applied_version") or 0
            failed = (self._journal.get("attempted_version")
                      if self._journal.get("status") in ("rolled_back", "refused") else None)
        if desired.version <= applied or desired.version == failed:
            return  # running it already, or it failed once (the bridge sees why)
        self._queue.put(desired)

    def _verified(self, payload: bytes) -> DesiredConfig:
        if len(payload) > MAX_CONFIG_BYTES:
            raise BadInput(f"{len(payload)} bytes is over the {MAX_CONFIG_BYTES} limit")
        if self.public_key is None:
            raise BadInput("no keys.tenant_public_key configured: cannot verify it")
        desired = DesiredConfig.model_validate_json(verify_envelope(payload, self.public_key))
        if (desired.tenant, desired.device) != (self.tenant, self.device):
            raise BadInput(f"it is for {desired.tenant}/{desired.device}, this device is "
                           f"{self.tenant}/{self.device}")
        return desired

    # -- applying (the worker thread) -------------------------------------------------

    def _run(self) -> None:
        while True:
            desired = self._queue.get()
            if desired is None:
                return
            try:
                self.apply(desired)
            except Exception:  # the worker must survive anything; the device runs on
                log.exception("applying desired config %d failed", desired.version)

    def apply(self, desired: DesiredConfig) -> bool:
        """Apply one version; True when the device runs it, False when it did not take
        it or rolled back (the journal says why)."""
        version = desired.version
        with self._lock:
            if version <= (self._journal.get("applied_version") or 0):
                return False  # a newer one was applied while this one waited
        current_text = self.path.read_bytes()
        try:
            merged = merge_desired(desired.config, tomllib.loads(current_text.decode()))
            new_text = (HEADER.format(version=version, previous=previous_path(self.path).name)
                        + tomli_w.dumps(merged)).encode()
            parse_config(merged, str(self.path))  # the schema of check-config, key files too
        except (EdgeError, ValueError, TypeError) as exc:
            self._record(status="refused", attempted_version=version,
                         reason=f"not applied: {str(exc).splitlines()[0]}")
            log.warning("desired config %d refused: %s", version, exc)
            return False
        try:
            write_atomic(previous_path(self.path), current_text)
        except OSError as exc:
            self._record(status="refused", attempted_version=version, reason=(
                f"not applied: cannot write {previous_path(self.path)}: {exc.strerror}; fix: "
                "the config's folder must be writable by the agent (ReadWritePaths= of the "
                "systemd unit)"))
            return False
        self._record(pending=version, attempted_version=version, status="applying",
                     reason=None)
        fault_points.reached("config.pending")
        try:
            write_atomic(self.path, new_text)
        except OSError as exc:
            failure: str | None = f"cannot write {self.path}: {exc.strerror}"
        else:
            fault_points.reached("config.written")
            failure = self._start_and_confirm()
        if failure is None:
            self._record(pending=None, applied_version=version, status="applied")
            log.info("desired config %d applied", version)
            return True
        self._roll_back(version, current_text, failure)
        return False

    def _start_and_confirm(self) -> str | None:
        """Reload the new file and wait for health; None when healthy, else why not."""
        try:
            self.daemon.reload()
        except (EdgeError, DriverError, OSError) as exc:
            return f"did not start: {str(exc).splitlines()[0]}"
        deadline = time.monotonic() + self.deadline_s
        tap = SelfTestTap(self.daemon)
        while True:
            down = [f"{role} {pid}: {h.detail}" for role, pid, p in peripherals_by_role(
                self.daemon) if (h := p.health()).state is HealthState.DOWN]
            ok, detail, _ms = tap.run(max(0.5, min(5.0, deadline - time.monotonic())))
            if not down and ok:
                return None
            if time.monotonic() >= deadline:
                problems = down + ([] if ok else [detail])
                return (f"not healthy within {self.deadline_s:g} s: "
                        + "; ".join(problems)[:500])
            time.sleep(0.2)

    def _roll_back(self, version: int, previous_text: bytes, failure: str) -> None:
        log.error("desired config %d rolled back: %s", version, failure)
        write_atomic(self.path, previous_text)
        try:
            self.daemon.reload()
        except (EdgeError, DriverError, OSError):
            log.exception("reloading the previous config failed; a restart will use it")
        self._record(pending=None, status="rolled_back", attempted_version=version,
                     reason=failure)
