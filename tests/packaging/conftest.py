"""Two builds of the Debian package (scripts/build_deb.py), made once per session for the
package's tests."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = "edge-agent"


@dataclass(frozen=True)
class Builds:
    old: Path
    new: Path
    seconds: list[float]


def project_version() -> str:
    import tomllib

    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


@pytest.fixture(scope="session")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    out = tmp_path_factory.mktemp("debs")
    base = project_version()
    debs, seconds = [], []
    for revision in ("1", "2"):
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(ROOT / "scripts/build_deb.py"), "--version",
             f"{base}-{revision}", "--extras", "serial", "--out", str(out),
             # one wheel of the project for both (as a release would)
             "--project-wheel-dir", str(out / "wheel")],
            capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        seconds.append(time.monotonic() - started)
        debs.append(out / f"{PKG}_{base}-{revision}_{arch()}.deb")
        assert debs[-1].exists(), done.stdout
    return Builds(debs[0], debs[1], seconds)


def arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
