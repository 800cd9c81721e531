"""The update root on disk: versioned environments, the ``current`` and ``previous``
symlinks, and the journal of the update in progress (all replaced atomically)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

JournalState = Literal["downloading", "installing", "switched", "confirmed", "rolled_back",
                       "failed"]
TERMINAL: tuple[JournalState, ...] = ("confirmed", "rolled_back", "failed")
INSTALLED_MARK = ".installed"  # written last into an environment: it is complete


def write_atomic(path: Path, data: bytes) -> None:
    """Write a temporary file, fsync it, rename it over ``path``, fsync the folder."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Journal:
    """One update attempt, from the offer to its outcome."""

    state: JournalState
    to_version: str
    from_version: str
    channel: str
    from_env: str = ""  # where a rollback goes (not `previous`: a cut may precede it)
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    switched_ms: int | None = None
    deadline_ms: int | None = None  # wall clock: the confirmation must come before it
    guard_pid: int | None = None
    reason: str = ""
    reported: bool = False  # the outcome is in the outbox

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def moved(self, state: JournalState, **changes: Any) -> Journal:
        return replace(self, state=state, **changes)


class UpdateLayout:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.envs = root / "envs"
        self.staging = root / "staging"
        self.current = root / "current"
        self.previous = root / "previous"
        self.journal_path = root / "update.json"
        self.offer_path = root / "offer.json"

    def ensure(self) -> None:
        self.envs.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir(parents=True, exist_ok=True)

    def env_for(self, version: str) -> Path:
        return self.envs / version

    def confirm_path(self, version: str) -> Path:
        """Written by the agent of ``version`` once it is healthy (agent/update/trial.py)."""
        return self.root / f"confirm-{version}.json"

    # -- environments ---------------------------------------------------------------

    def is_installed(self, env: Path) -> bool:
        return (env / INSTALLED_MARK).is_file()

    def current_env(self) -> Path | None:
        return self._target(self.current)

    def previous_env(self) -> Path | None:
        return self._target(self.previous)

    def _target(self, link: Path) -> Path | None:
        if not link.is_symlink():
            return None
        env = (link.parent / os.readlink(link)).resolve()
        return env if self.is_installed(env) else None

    def version_of(self, env: Path | None) -> str:
        if env is None:
            return "none"
        try:
            return str(json.loads((env / INSTALLED_MARK).read_text())["version"])
        except (OSError, ValueError, KeyError):
            return env.name

    def point(self, link: Path, env: Path) -> None:
        """Make ``link`` point at ``env`` atomically: a new symlink renamed over the old,
        so a power cut leaves either the old target or the new one, never no link."""
        tmp = link.with_name(f".{link.name}.new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(os.path.relpath(env, link.parent), tmp)
        os.replace(tmp, link)
        fsync_dir(link.parent)

    def prune(self, keep: set[Path]) -> list[str]:
        """Remove environments and staging left over, keeping ``keep``; returns names."""
        removed = []
        keep_resolved = {k.resolve() for k in keep}
        # a store of environments shared by several roots (a symlink: the simulated fleet)
        # is not one device's to prune
        shared = self.envs.is_symlink()
        for env in self.envs.iterdir() if self.envs.is_dir() and not shared else ():
            # a linked environment is not the guard's: the Debian package's `envs/package`
            # -> /opt/edge-agent belongs to dpkg (packaging/deb/postinst)
            if env.name.startswith(".") or env.is_symlink():
                continue
            if env.resolve() not in keep_resolved:
                shutil.rmtree(env, ignore_errors=True)
                removed.append(env.name)
        for leftover in self.staging.iterdir() if self.staging.is_dir() else ():
            shutil.rmtree(leftover, ignore_errors=True)
        return removed

    # -- journal --------------------------------------------------------------------

    def read_journal(self) -> Journal | None:
        try:
            raw = json.loads(self.journal_path.read_text())
            return Journal(**raw)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError):
            # a torn journal cannot happen (atomic rename); an edited one is not trusted
            return None

    def write_journal(self, journal: Journal) -> Journal:
        write_atomic(self.journal_path, json.dumps(asdict(journal)).encode())
        return journal
