"""Install a verified wheel set into a new environment next to the current one.

``python -m venv --without-pip`` then the *running* environment's pip installs into it
(``pip --python``): no pip copy per environment, and ``--isolated --no-index
--find-links`` so nothing but the verified wheels can be installed (no index, no pip.conf
or PIP_* variable of the machine). The environment is built in place (``envs/<version>``: its
scripts' shebangs name that path) and its ``.installed`` mark is written last; a folder
without the mark is never pointed at and is rebuilt, so a power cut mid-install leaves a
half folder that is thrown away, never a half environment that ``current`` points at.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from agent import fault_points
from agent.update.layout import INSTALLED_MARK, UpdateLayout, write_atomic
from contracts.release_manifest import ReleaseManifest

PIP_TIMEOUT_S = 600.0


class InstallError(Exception):
    """pip or venv failed; the text carries pip's last lines."""


def _site_packages(env: Path) -> Path:
    rel = Path(sysconfig.get_path("purelib")).relative_to(sysconfig.get_path("data"))
    return env / rel


def _run(argv: list[str], what: str) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k not in ("PYTHONPATH", "PYTHONHOME")}
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
                              env=env, check=False)
    except subprocess.TimeoutExpired:
        raise InstallError(f"{what} did not finish in {PIP_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise InstallError(f"{what} failed (exit {done.returncode}): {tail}")


def install_release(layout: UpdateLayout, manifest: ReleaseManifest, wheels: Path,
                    dependency_site: Path | None) -> Path:
    """The complete environment for ``manifest.version`` (reused when already there).

    One install at a time per ``envs`` folder (a lock file): guards sharing one store of
    environments (the simulated fleet) wait for the first and reuse its environment."""
    layout.envs.mkdir(parents=True, exist_ok=True)
    with open(layout.envs / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _install(layout, manifest, wheels, dependency_site)


def _install(layout: UpdateLayout, manifest: ReleaseManifest, wheels: Path,
             dependency_site: Path | None) -> Path:
    final = layout.env_for(manifest.version)
    if layout.is_installed(final):
        return final
    shutil.rmtree(final, ignore_errors=True)  # an unfinished one from a power cut
    building = final
    _run([sys.executable, "-m", "venv", "--without-pip", str(building)], "python -m venv")
    if dependency_site is not None:
        # the dependencies already on this machine, shared by every environment
        (_site_packages(building) / "edge-dependencies.pth").write_text(f"{dependency_site}\n")
    fault_points.reached("update.install")
    _run([sys.executable, "-m", "pip", "--isolated", "--python", str(building / "bin" / "python"),
          "install", "--no-index", "--find-links", str(wheels), "--no-cache-dir", "--quiet",
          manifest.requirement], "pip install")
    write_atomic(building / INSTALLED_MARK, json.dumps(
        {"version": manifest.version, "channel": manifest.channel}).encode())
    return final
