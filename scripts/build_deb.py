#!/usr/bin/env python3
"""Build the edge agent's Debian package: edge-agent_<version>_<arch>.deb.

    .venv/bin/python scripts/build_deb.py --extras nfc,printer [--version 0.1.0-2] [--out dist]

Layout (docs/technician.md, "Debian package"):
  /opt/edge-agent                          a virtualenv: the project's wheel, its dependencies
                                           and the extras the site picks, byte-compiled
  /usr/bin/edge-agent                      -> /opt/edge-agent/bin/edge-agent
  /opt/edge-agent/.installed               the update layout's mark: a complete environment
  /usr/lib/systemd/system/edge-agent.service        systemd/edge-agent.service
  /usr/lib/systemd/system/edge-agent.service.d/update.conf
                                           systemd/edge-agent-update.conf: run from `current`
  /usr/lib/systemd/system/edge-agent-update@.service
                                           systemd/edge-agent-update@.service: the update guard
  /usr/share/polkit-1/rules.d/50-edge-agent-update.rules
                                           the service user may restart its unit and start
                                           its update guard (agent/update/service_systemd.py)
  /usr/lib/sysusers.d/edge-agent.conf               systemd/edge-agent.sysusers.conf
  /usr/lib/udev/rules.d/60-edge-agent.rules         systemd/60-edge-agent.rules
  /usr/lib/modprobe.d/edge-agent-nfc.conf           systemd/blacklist-pn533.conf
  /usr/lib/systemd/journald.conf.d/edge-agent.conf  systemd/journald-edge-agent.conf
  /etc/edge-agent/agent.toml               conffile: packaging/deb/agent.toml
  DEBIAN/postinst, prerm, postrm           packaging/deb/

Why the virtualenv is made here and not by postinst from shipped wheels: dpkg then knows
every file (dpkg -L, dpkg -S, debsums, a clean remove), installing needs neither pip nor
a network (a device may be offline), and it takes seconds on an SD card instead of a pip
run. The price: the package is tied to the interpreter (python3.11 on bookworm) and to
the machine's architecture (compiled wheels such as cryptography), so an arm64 device
needs a package built on arm64. The venv is made in a staging folder and its absolute
paths (script shebangs, pyvenv.cfg, byte-code) are rewritten to /opt/edge-agent; the
build fails if any staging path is left in a file.

Signed updates (agent/update/, docs/technician.md "Updates and rollback"): the package's
venv is the update root's first environment. postinst links
/var/lib/edge-agent/software/envs/package -> /opt/edge-agent and points `current` at it;
the drop-in starts the agent from `current`. The venv carries pip, because the update
guard installs a release with the running environment's pip (agent/update/install.py).

Dependency wheels are kept in a cache (--wheel-cache), so a second build needs no network.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "/opt/edge-agent"
PACKAGE = "edge-agent"
# extras a device may carry; "device" (sd_notify, metrics) is always in: the unit is
# Type=notify with a watchdog and serves --metrics
SITE_EXTRAS = ("nfc", "pcsc", "serial", "camera", "gpio", "printer", "pos")
ALWAYS_EXTRAS = ("device",)
# shared libraries the extras' wheels load from the system
EXTRA_DEPENDS = {
    "nfc": ["libusb-1.0-0"],
    "pcsc": ["libpcsclite1"],
    "printer": ["libusb-1.0-0"],
    "camera": ["libzbar0"],
}
EXTRA_RECOMMENDS = {"pcsc": ["pcscd"]}
SOURCE_PACKAGES = ("agent", "contracts", "drivers", "sync", "cloud_bridge", "simulators")
VERSION_RE = re.compile(r"^(?:\d+:)?\d[A-Za-z0-9.+~]*(?:-[A-Za-z0-9.+~]+)?$")
# systemd/ file -> where the package puts it
SYSTEM_FILES = {
    "edge-agent.sysusers.conf": "usr/lib/sysusers.d/edge-agent.conf",
    "60-edge-agent.rules": "usr/lib/udev/rules.d/60-edge-agent.rules",
    "blacklist-pn533.conf": "usr/lib/modprobe.d/edge-agent-nfc.conf",
    "journald-edge-agent.conf": "usr/lib/systemd/journald.conf.d/edge-agent.conf",
    "edge-agent-update.conf": "usr/lib/systemd/system/edge-agent.service.d/update.conf",
    "edge-agent-update@.service": "usr/lib/systemd/system/edge-agent-update@.service",
    "50-edge-agent-update.rules": "usr/share/polkit-1/rules.d/50-edge-agent-update.rules",
}
# the mark agent/update/layout.py reads: this environment is complete, of this version
INSTALLED_MARK = ".installed"


class BuildError(Exception):
    """A build that cannot go on; the message says what to fix."""


@dataclass(frozen=True)
class Options:
    version: str
    extras: tuple[str, ...]
    out: Path
    wheel_cache: Path
    python: Path
    compress: str
    project_wheel_dir: Path | None


def project_version() -> str:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def parse_extras(text: str) -> tuple[str, ...]:
    picked = [e.strip() for e in text.split(",") if e.strip()]
    unknown = [e for e in picked if e not in SITE_EXTRAS + ALWAYS_EXTRAS]
    if unknown:
        raise BuildError(f"--extras: unknown extra(s) {', '.join(unknown)}; a device may "
                         f"carry: {', '.join(SITE_EXTRAS)}")
    return tuple(sorted(set(picked) | set(ALWAYS_EXTRAS)))


def run(cmd: list[str]) -> None:
    # without PYTHONPATH: pip would take a source tree on it (with an editable install's
    # egg-info) for the project already installed, and leave it out of the package
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise BuildError(f"{' '.join(cmd[:4])} … failed (exit {done.returncode}):\n"
                         + "\n".join(tail))


def project_wheel(work: Path, keep: Path | None) -> Path:
    """The project's wheel: the one in ``keep`` when there is one (several packages of
    one release share it), else built from a copy of the sources (the tree stays clean)
    and left in ``keep``."""
    if keep is not None:
        found = sorted(keep.glob(f"edge_suite-{project_version()}-*.whl"))
        if found:
            return found[-1]
    wheel = build_project_wheel(work)
    if keep is None:
        return wheel
    keep.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(wheel, keep / wheel.name))


def build_project_wheel(work: Path) -> Path:
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for pkg in SOURCE_PACKAGES:
        shutil.copytree(ROOT / pkg, src / pkg, ignore=skip)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"),
         str(src)])
    wheels = list((work / "dist").glob("edge_suite-*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"expected one project wheel, found {wheels}")
    return wheels[0]


def fill_wheel_cache(opts: Options, wheel: Path, venv_python: Path) -> None:
    """Dependency wheels for the target interpreter: from the cache alone when it has
    them all, else from the index (built from source where no wheel exists)."""
    opts.wheel_cache.mkdir(parents=True, exist_ok=True)
    spec = f"{wheel}[{','.join(opts.extras)}]"
    base = [sys.executable, "-m", "pip", "--python", str(venv_python), "wheel", "-q",
            "-w", str(opts.wheel_cache), "-f", str(opts.wheel_cache)]
    try:
        run([*base, "--no-index", spec, "pip"])
    except BuildError:
        run([*base, spec, "pip"])
    # pip copies the project's own wheel too; a cached one must never be picked later
    for stale in opts.wheel_cache.glob("edge_suite-*.whl"):
        stale.unlink()


def make_venv(opts: Options, stage: Path, wheel: Path) -> Path:
    venv = stage / PREFIX.lstrip("/")
    run([str(opts.python), "-m", "venv", "--without-pip", str(venv)])
    venv_python = venv / "bin" / "python"
    fill_wheel_cache(opts, wheel, venv_python)
    run([sys.executable, "-m", "pip", "--python", str(venv_python), "install", "-q",
         "--no-index", "-f", str(opts.wheel_cache), "--no-compile",
         f"{wheel}[{','.join(opts.extras)}]", "pip"])
    relocate(venv)
    # written last, as agent/update/install.py does for the environments it makes
    (venv / INSTALLED_MARK).write_text(json.dumps({"version": project_version(),
                                                  "channel": "deb"}))
    return venv


def relocate(venv: Path) -> None:
    """Rewrite the staging path to /opt/edge-agent, then byte-compile with the final
    paths (the service cannot write __pycache__ under a read-only /opt)."""
    staged = str(venv).encode()
    for path in [*(venv / "bin").iterdir(), venv / "pyvenv.cfg"]:
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if staged in data:
            path.write_bytes(data.replace(staged, PREFIX.encode()))
    for record in venv.glob("lib/python3*/site-packages/*.dist-info/direct_url.json"):
        record.unlink()  # names the wheel's path on the build machine; nothing reads it
    left = [p for p in venv.rglob("*") if p.is_file() and not p.is_symlink()
            and staged in p.read_bytes()]
    if left:
        raise BuildError(f"staging path left in {len(left)} file(s), e.g. {left[0]}")
    stage_root = str(venv)[: -len(PREFIX)]
    run([str(venv / "bin" / "python"), "-m", "compileall", "-q", "-j", "0",
         "-s", stage_root, "-p", "/", str(venv / "lib")])


def unit_text() -> str:
    """systemd/edge-agent.service with ExecStart at the package's venv."""
    text = (ROOT / "systemd" / "edge-agent.service").read_text()
    new, count = re.subn(r"^ExecStart=\S*/bin/edge-agent ", f"ExecStart={PREFIX}/bin/edge-agent ",
                         text, flags=re.M)
    if count != 1:
        raise BuildError("systemd/edge-agent.service: no 'ExecStart=…/bin/edge-agent' line")
    return re.sub(r"^Documentation=\S+", "Documentation=file:///usr/share/doc/edge-agent/"
                  "technician.md", new, flags=re.M)


def install_files(stage: Path) -> None:
    def put(rel: str, data: bytes | str, mode: int = 0o644) -> None:
        dest = stage / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data.encode() if isinstance(data, str) else data)
        dest.chmod(mode)

    put("usr/lib/systemd/system/edge-agent.service", unit_text())
    for name, rel in SYSTEM_FILES.items():
        put(rel, (ROOT / "systemd" / name).read_bytes())
    # no secret in it, but only root and the service read a device's config
    put("etc/edge-agent/agent.toml", (ROOT / "packaging/deb/agent.toml").read_bytes(), 0o640)
    put("usr/share/doc/edge-agent/copyright", (ROOT / "packaging/deb/copyright").read_bytes())
    put("usr/share/doc/edge-agent/technician.md", (ROOT / "docs/technician.md").read_bytes())
    (stage / "usr/bin").mkdir(parents=True, exist_ok=True)
    (stage / "usr/bin/edge-agent").symlink_to(f"{PREFIX}/bin/edge-agent")


def control_text(opts: Options, arch: str, installed_kib: int) -> str:
    # the venv's bin/python links to this interpreter and its site-packages is versioned
    depends = [opts.python.name, "systemd-sysusers", "init-system-helpers (>= 1.54~)"]
    # the rules are plain files; udev reads them where it runs (not in an image build)
    recommends = ["udev", "polkitd | policykit-1"]
    for extra in opts.extras:
        depends += [d for d in EXTRA_DEPENDS.get(extra, []) if d not in depends]
        recommends += [r for r in EXTRA_RECOMMENDS.get(extra, []) if r not in recommends]
    fields = {
        "Package": PACKAGE, "Version": opts.version, "Architecture": arch,
        "Maintainer": "Edge suite maintainers <edge-suite@localhost>",
        "Installed-Size": str(installed_kib), "Depends": ", ".join(depends),
        "Recommends": ", ".join(recommends), "Section": "misc", "Priority": "optional",
        "Description": "on-site edge agent for gates, time clocks and POS printers\n"
        f" The edge agent with its systemd unit, service user, udev rules and a default\n"
        f" config. Extras: {', '.join(opts.extras)}.",
    }
    return "".join(f"{k}: {v}\n" for k, v in fields.items() if v)


def write_debian_dir(opts: Options, stage: Path) -> None:
    debian = stage / "DEBIAN"
    debian.mkdir()
    for script in ("postinst", "prerm", "postrm"):
        shutil.copy2(ROOT / "packaging/deb" / script, debian / script)
        (debian / script).chmod(0o755)
    (debian / "conffiles").write_text("/etc/edge-agent/agent.toml\n")
    sums, size = [], 0
    for path in sorted(p for p in stage.rglob("*") if "DEBIAN" not in p.parts):
        size += path.lstat().st_size
        if path.is_file() and not path.is_symlink() and not str(path).startswith(
                str(stage / "etc")):
            digest = hashlib.md5(path.read_bytes()).hexdigest()  # dpkg's md5sums format
            sums.append(f"{digest}  {path.relative_to(stage)}\n")
    (debian / "md5sums").write_text("".join(sums))
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    (debian / "control").write_text(control_text(opts, arch, size // 1024 + 1))


def build(opts: Options) -> Path:
    if not VERSION_RE.match(opts.version):
        raise BuildError(f"--version {opts.version!r} is not a Debian version (e.g. 0.1.0-1)")
    if not re.fullmatch(r"python3\.\d+", opts.python.name) or not opts.python.exists():
        raise BuildError(f"--python {opts.python}: not a Debian interpreter such as "
                         "/usr/bin/python3.11 (apt-get install python3)")
    with tempfile.TemporaryDirectory(prefix="edge-deb-") as tmp:
        work = Path(tmp)
        stage = work / "root"
        stage.mkdir()
        wheel = project_wheel(work, opts.project_wheel_dir)
        make_venv(opts, stage, wheel)
        install_files(stage)
        write_debian_dir(opts, stage)
        opts.out.mkdir(parents=True, exist_ok=True)
        control = (stage / "DEBIAN/control").read_text()
        arch = re.search(r"^Architecture: (\S+)", control, re.M)
        assert arch is not None
        deb = opts.out / f"{PACKAGE}_{opts.version.split(':')[-1]}_{arch.group(1)}.deb"
        os.umask(0o022)
        run(["dpkg-deb", "--root-owner-group", f"-Z{opts.compress}", "--build", str(stage),
             str(deb)])
    return deb


def parse_args(argv: list[str] | None) -> Options:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--version", default=f"{project_version()}-1",
                    help="the Debian version (default: the project's version, revision 1)")
    ap.add_argument("--extras", default="", help="comma-separated extras for what the site "
                    f"drives: {', '.join(SITE_EXTRAS)}")
    ap.add_argument("--out", type=Path, default=ROOT / "dist")
    ap.add_argument("--wheel-cache", type=Path, default=Path(os.environ.get(
        "EDGE_DEB_WHEEL_CACHE", Path.home() / ".cache" / "edge-agent-deb" / "wheels")))
    ap.add_argument("--python", type=Path, default=Path("/usr/bin/python3").resolve(),
                    help="the Debian interpreter the venv links to, by its versioned name "
                    "(default: what /usr/bin/python3 is here, e.g. /usr/bin/python3.11); "
                    "the package depends on that Debian package")
    ap.add_argument("--compress", choices=("zstd", "xz", "gzip", "none"), default="zstd",
                    help="zstd: fast, dpkg >= 1.21.18 (bookworm); xz: ~30%% smaller, minutes")
    ap.add_argument("--project-wheel-dir", type=Path, help="reuse the project's wheel found "
                    "here, or keep the one built here (one wheel for several packages)")
    a = ap.parse_args(argv)
    return Options(a.version, parse_extras(a.extras), a.out.resolve(), a.wheel_cache.resolve(),
                   a.python, a.compress, a.project_wheel_dir)


def main(argv: list[str] | None = None) -> int:
    try:
        opts = parse_args(argv)
        started = time.monotonic()
        deb = build(opts)
    except BuildError as exc:
        print(f"build_deb: {exc}", file=sys.stderr)
        return 2
    print(f"{deb} ({deb.stat().st_size / 1e6:.1f} MB, {time.monotonic() - started:.0f} s, "
          f"extras {','.join(opts.extras)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
