"""Real releases of this project for the update tests and the rollout benchmark: wheels
built with ``pip wheel`` from a copy of the tree with its version changed (and one whose
self-test tap is broken), a release-signing key, a release folder served over HTTPS by
``cloud-bridge release serve`` in its own process, and device update roots.

Dependencies: each new environment gets a ``.pth`` naming a folder of symlinks to the
shared venv's installed packages (everything but edge-suite itself). Installing the real
dependency wheels into every environment would take minutes per environment on this
machine and prove nothing about the update (pip resolves against them either way:
``pip install --no-index`` sees them as installed); the device's own wheel set is what
``[update] dependency_site = None`` is for.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from agent.update.install import install_release
from agent.update.layout import UpdateLayout
from cloud_bridge.releases.signing import create_key, load_key
from cloud_bridge.releases.store import ReleaseStore
from contracts.release_manifest import ReleaseManifest
from tests.device.pki import make_ca, server_cert
from tests.mqtt_broker import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
TREE = ("agent", "contracts", "drivers", "sync", "cloud_bridge", "simulators",
        "pyproject.toml", "README.md")
OLD, NEW, BROKEN = "1.0.0", "1.1.0", "1.2.0"
# the broken build: installs and starts, but its self-test tap never answers right
BREAK = ("        return decide(gate, now, state, access.rules).reason",
         "        raise RuntimeError('broken build: the decision path fails')")


def _copy_tree(dest: Path, version: str, broken: bool) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")
    for name in TREE:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy(src, dest / name)
    pyproject = dest / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"',
                                                       f'version = "{version}"', 1))
    init = dest / "agent" / "__init__.py"
    init.write_text(f'__version__ = "{version}"\n')
    if broken:
        health = dest / "agent" / "health.py"
        text = health.read_text()
        assert BREAK[0] in text, "agent/health.py changed: update BREAK in the release kit"
        health.write_text(text.replace(*BREAK))
    return dest


def build_wheel(workdir: Path, version: str, broken: bool = False) -> Path:
    src = _copy_tree(workdir / f"src-{version}", version, broken)
    out = workdir / f"wheel-{version}"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w",
                    str(out), str(src)], check=True, env=env, timeout=300, cwd=workdir)
    shutil.rmtree(src)
    (wheel,) = out.glob("*.whl")
    return wheel


def build_wheels(workdir: Path) -> dict[str, Path]:
    """The old, the new and the broken wheel, built in parallel."""
    plan = {OLD: False, NEW: False, BROKEN: True}
    with ThreadPoolExecutor(3) as pool:
        futures = {v: pool.submit(build_wheel, workdir, v, b) for v, b in plan.items()}
        return {v: f.result() for v, f in futures.items()}


def dependency_site(workdir: Path) -> Path:
    """Symlinks to the shared venv's packages, without edge-suite (see the docstring)."""
    site = Path(sysconfig.get_path("purelib"))
    deps = workdir / "deps"
    deps.mkdir(exist_ok=True)
    for entry in site.iterdir():
        name = entry.name
        if name.startswith(("edge_suite", "__editable__", "_distutils_hack",
                            "distutils-precedence")):
            continue
        (deps / name).symlink_to(entry)
    return deps


@dataclass
class ReleaseServer:
    folder: Path
    ca: Path
    url: str
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def serve_releases(workdir: Path, folder: Path) -> ReleaseServer:
    ca_pem, ca_key = make_ca()
    ca = workdir / "ca.crt"
    ca.write_bytes(ca_pem)
    cert, key = server_cert(ca_pem, ca_key, workdir / "tls")
    port = free_port()
    log = open(workdir / "release-server.log", "ab")  # noqa: SIM115 - the process holds it
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloud_bridge", "release", "serve", "--folder", str(folder),
         "--tls-cert", str(cert), "--tls-key", str(key), "--host", "127.0.0.1",
         "--port", str(port)], stdout=log, stderr=log,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    log.close()
    wait_for_port(port, 30)
    return ReleaseServer(folder, ca, f"https://127.0.0.1:{port}", proc)


@dataclass
class ReleaseKit:
    workdir: Path
    wheels: dict[str, Path]
    deps: Path
    key_file: Path
    public_key: str
    store: ReleaseStore
    server: ReleaseServer

    def manifest(self, version: str) -> ReleaseManifest:
        return self.store.manifest("stable", version, load_key(self.key_file).public_key())

    def manifest_url(self, version: str) -> str:
        return f"{self.server.url}/releases/stable/{version}/manifest.json"


def make_kit(workdir: Path) -> ReleaseKit:
    workdir.mkdir(parents=True, exist_ok=True)
    wheels = build_wheels(workdir)
    key_file = workdir / "release.key"
    public = create_key(key_file)
    store = ReleaseStore(workdir / "releases")
    for version, wheel in wheels.items():
        store.publish(load_key(key_file), "stable", version, [wheel], f"edge-suite=={version}")
    return ReleaseKit(workdir, wheels, dependency_site(workdir), key_file, public, store,
                      serve_releases(workdir, store.folder))


def install_first(kit: ReleaseKit, root: Path, version: str = OLD) -> Path:
    """The device as a technician leaves it: ``version`` installed and current."""
    layout = UpdateLayout(root)
    layout.ensure()
    wheels = root / "first-wheels"
    wheels.mkdir(exist_ok=True)
    shutil.copy(kit.wheels[version], wheels)
    env = install_release(layout, kit.manifest(version), wheels, kit.deps)
    layout.point(layout.current, env)
    shutil.rmtree(wheels)
    return env


def release_key_b64(kit: ReleaseKit) -> str:
    return "base64:" + kit.public_key


def wait_until(check: object, timeout: float, what: str, interval: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()  # type: ignore[operator]
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout} s")
        time.sleep(interval)


__all__ = ["BROKEN", "NEW", "OLD", "ReleaseKit", "base64", "install_first", "make_kit",
           "release_key_b64", "wait_until"]
