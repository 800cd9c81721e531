"""Two builds of the Debian package (scripts/build_deb.py), made once per session for the
package's tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.machine_lock import machine_lock

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


@pytest.fixture(autouse=True)
def host_packages_to_myself() -> Iterator[None]:
    """One package test at a time on this machine, across the test workers: one installs
    the .deb here, the other boots systemd on an overlay of this machine's root."""
    with machine_lock("host-packages"):
        yield


@pytest.fixture(scope="session")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # the workers of this run share one build (their base temp folders' parent is
        # this run's): the first builds it, the other waits for it and takes it
        out = tmp_path_factory.getbasetemp().parent / "debs"
        out.mkdir(exist_ok=True)
        with machine_lock(f"debs-{out.parent.name}"):
            return _build_once(out)
    return _build_once(tmp_path_factory.mktemp("debs"))


def _build_once(out: Path) -> Builds:
    record = out / "builds.json"
    if record.exists():
        saved = json.loads(record.read_text())
        return Builds(Path(saved["old"]), Path(saved["new"]), saved["seconds"])
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
    builds = Builds(debs[0], debs[1], seconds)
    record.write_text(json.dumps(
        {"old": str(builds.old), "new": str(builds.new), "seconds": seconds}))
    return builds


def arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
