"""Before the agent starts: its data folder must be a folder it can write in.

The config only names ``data_dir``; whether that is usable is a fact of the machine, so
it is checked at ``edge-agent run`` (not by check-config) and reported as one line that
names the key, the problem and the fix, instead of a traceback from deep inside the store.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from agent.config import AgentConfig
from agent.errors import ConfigError

SERVICE_USER = "edge-agent"


def _first_file_on_the_way(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` that is not a folder, if any."""
    for parent in [path, *path.parents]:
        if parent.exists() or parent.is_symlink():
            return None if parent.is_dir() else parent
    return None


def prepare_data_dir(cfg: AgentConfig) -> Path:
    """Create the data folder when missing and prove it is writable; ConfigError if not."""
    data = cfg.data_path
    where = f"{cfg.source}: data_dir"
    fix = f"set data_dir to a folder the agent may write in, or create it: install -d " \
          f"-o {SERVICE_USER} {data}"
    blocker = _first_file_on_the_way(data)
    if blocker == data:
        raise ConfigError(f"{where}: {data} is a file, not a folder; fix: move the file away "
                          "or set data_dir to a folder (it is created when missing)")
    if blocker is not None:
        raise ConfigError(f"{where}: cannot create {data}: {blocker} is a file, not a folder; "
                          f"fix: {fix}")
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot create {data}: {exc.strerror}; fix: {fix}") from None
    try:
        fd, probe = tempfile.mkstemp(dir=data, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot write in {data}: {exc.strerror}; fix: chown "
                          f"{SERVICE_USER}: {data} (the service user must own it), or set "
                          "data_dir to a folder the agent may write in") from None
    return data
