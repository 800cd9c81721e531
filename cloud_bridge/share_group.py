"""The bridges' MQTT shared-subscription group name: a secret of the deployment.

Every bridge process of one deployment must use the same group (that is how they share
the load), and nobody else may guess it: a client in the group receives its share of
every tenant's events. Mosquitto refuses ``$share/...`` subscriptions to devices (the
share_guard plugin, mosquitto/share-guard/); the unguessable name is the second wall,
e.g. against a bridge identity of another deployment on the same broker.

The name lives in ``<keys-dir>/mqtt-share-group`` (mode 0600, next to the tenants' keys,
which all bridges of a deployment already share). The first bridge to start creates it;
the others read it. It is never logged.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from cloud_bridge.errors import BridgeError

FILE_NAME = "mqtt-share-group"
# one topic level, no wildcards: what Mosquitto accepts as a share name
VALID = re.compile(r"[A-Za-z0-9_-]{16,128}")


class ShareGroupError(BridgeError):
    pass


def share_group_file(keys_dir: Path) -> Path:
    return keys_dir / FILE_NAME


def load_or_create(keys_dir: Path) -> str:
    """The deployment's group name; created (128 random bits) on first use."""
    path = share_group_file(keys_dir)
    name = f"bridge-{secrets.token_hex(16)}"
    keys_dir.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return read(path)
    # written whole under a private name, then linked: link() refuses an existing target,
    # so two bridges starting together agree on the first one's name, never a torn file
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(name + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return read(path)
    finally:
        tmp.unlink(missing_ok=True)
    return name


def read(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise ShareGroupError(f"cannot read the share-group file {path}: {exc}") from None
    check(text, str(path))
    return text


def check(name: str, where: str = "--share-group") -> str:
    if not VALID.fullmatch(name):
        raise ShareGroupError(f"{where}: the share group must be 16-128 characters of "
                              "A-Z a-z 0-9 _ - (an unguessable secret, not a word)")
    return name
