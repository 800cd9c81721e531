from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.update.device import Device
from tests.update.release_kit import OLD, ReleaseKit, install_first, make_kit


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReleaseKit]:
    """Three real wheels (old, new, broken), signed and served over HTTPS: built once."""
    made = make_kit(tmp_path_factory.mktemp("release-kit"))
    yield made
    made.server.stop()


@pytest.fixture(scope="session")
def old_env(kit: ReleaseKit, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The old version installed once (pip into a new venv); devices get a copy."""
    root = tmp_path_factory.mktemp("template")
    return install_first(kit, root, OLD)


@pytest.fixture
def make_device(kit: ReleaseKit, old_env: Path, tmp_path: Path) -> Iterator[
        type[Device] | object]:
    made: list[Device] = []

    def make(**options: object) -> Device:
        device = Device(kit, tmp_path / f"device-{len(made)}", **options)  # type: ignore[arg-type]
        device.layout.ensure()
        # scripts' shebangs name the template's path; the agent runs as bin/python -m agent
        shutil.copytree(old_env, device.layout.env_for(OLD), symlinks=True)
        device.layout.point(device.layout.current, device.layout.env_for(OLD))
        made.append(device)
        return device

    yield make
    for device in made:
        device.stop()
