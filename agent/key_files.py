"""Key files must be readable by the service user only.

A config may name its secrets as ``file:`` paths (the credential HMAC key, the device's
signing key). A key file that group or others can read leaks the tenant's card-hash key
to every local account and backup tool, so the agent refuses to start with one, and says
how to fix it. Key bytes are never part of any message.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from agent.errors import ConfigError

SERVICE_USER = "edge-agent"


def check_key_file(path: Path, where: str) -> None:
    """Raise ConfigError unless ``path`` is a regular file with no group/other access.
    ``where`` names the config file and key ("agent.toml: keys.credential_hmac_key").
    A missing file is left to the caller's own "cannot read" message."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"{where}: cannot inspect key file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{where}: key file {path} is not a regular file")
    loose = stat.S_IMODE(st.st_mode) & 0o077
    if loose:
        who = " and ".join(w for w, bits in (("group", 0o070), ("others", 0o007))
                           if loose & bits)
        raise ConfigError(
            f"{where}: key file {path} is accessible to {who} (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); a key must be readable by the service user "
            f"only. Fix: chmod 600 {path} && chown {SERVICE_USER}: {path} "
            "(then restart the agent)")
