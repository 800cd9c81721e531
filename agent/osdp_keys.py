"""``edge-agent osdp-install``: give an OSDP reader its own secure channel key.

A new reader (or one reset to install mode) knows only the published default key,
SCBK-D. This command uses SCBK-D for one session to set a fresh random 16-byte key on
the reader, checks the reader answers with it, and stores it in the key file the
reader's ``scbk`` option names (``file:keys/osdp-entry.scbk``: base64, mode 0600, like
the config's other keys). The reader then leaves install mode: SCBK-D no longer opens
it. ``--rotate`` replaces a working key with a fresh one over the secure channel of the
stored key. The key is never printed or logged.

The new key is written next to the old as ``<file>.pending`` before the reader gets it
and moved over the old file only once the reader answers with it, so an interrupted
run never leaves the device without the key the reader holds.
"""

from __future__ import annotations

import base64
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from agent.config import AgentConfig, ReaderConfig, load_key
from agent.errors import ConfigError
from agent.key_files import SERVICE_USER
from drivers.errors import KeySetFailed
from drivers.registry import url_scheme

KEY_BYTES = 16


@dataclass(frozen=True, slots=True)
class KeySet:
    reader: str
    key_file: Path
    rotated: bool


def osdp_reader(config: AgentConfig, reader_id: str) -> ReaderConfig:
    reader = next((r for r in config.readers if r.id == reader_id), None)
    if reader is None:
        known = ", ".join(r.id for r in config.readers if r.url.startswith("osdp:")) or "none"
        raise ConfigError(f"{config.source}: no reader '{reader_id}' (OSDP readers: {known})")
    if url_scheme(reader.url) != "osdp":
        raise ConfigError(f"{config.source}: reader '{reader_id}' is {reader.url}, not an "
                          "osdp: reader")
    return reader


def key_file(config: AgentConfig, reader: ReaderConfig) -> Path:
    value = reader.options().get("scbk")
    if not isinstance(value, str) or not value.startswith("file:"):
        raise ConfigError(f"{config.source}: reader '{reader.id}' needs scbk = "
                          f"\"file:keys/osdp-{reader.id}.scbk\" (the file this command "
                          "writes its key to)")
    return config.path(value.removeprefix("file:"))


def _write_key(path: Path, key: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(key).decode() + "\n")
        f.flush()
        os.fsync(f.fileno())
    if os.geteuid() == 0:  # the agent runs as its service user and must read it
        try:
            user = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            return
        os.chown(path, user.pw_uid, user.pw_gid)


def install_reader_key(config: AgentConfig, reader_id: str, rotate: bool = False,
                       timeout_s: float = 10.0) -> KeySet:
    """Set a fresh key on the reader and store it; raises ConfigError or the driver's
    KeySetFailed with what to do."""
    from drivers.osdp_reader import set_reader_key  # needs the osdp extra

    reader = osdp_reader(config, reader_id)
    path = key_file(config, reader)
    current = None
    if rotate:
        if not path.exists():
            raise ConfigError(f"reader '{reader_id}' has no key at {path} to rotate from: "
                              "put the reader in install mode and run without --rotate")
        current = load_key(f"file:{path}", config, f"readers.{reader_id}.scbk")
    new_key = os.urandom(KEY_BYTES)
    pending = path.with_name(path.name + ".pending")
    _write_key(pending, new_key)
    try:
        set_reader_key(reader.url, new_key, current, timeout_s)
    except KeySetFailed as exc:
        if not exc.maybe_taken:
            pending.unlink(missing_ok=True)
            raise
        raise KeySetFailed(f"{exc}; the key the reader may now hold is kept in {pending}",
                           True) from None
    os.replace(pending, path)
    return KeySet(reader_id, path, rotate)
