"""The Debian package on this machine with the real dpkg: build version A and a higher
version B with scripts/build_deb.py, then install A, upgrade to B (a locally edited
config is kept), remove (state kept, program gone) and purge (nothing left).

Needs root (dpkg installs into /). The machine is left as it was even when a check fails:
the package is purged in a `finally`, and the service user, which the package keeps on
purge as Debian's packages do (packaging/deb/postrm says why), is deleted by the test
when it did not exist before."""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS
from tests.packaging.conftest import Builds, project_version

ROOT = Path(__file__).resolve().parents[2]
PKG = "edge-agent"
USER = "edge-agent"
CONF = Path("/etc/edge-agent")
STATE = Path("/var/lib/edge-agent")
PREFIX = Path("/opt/edge-agent")
SOFTWARE = STATE / "software"  # the update root (agent/update/layout.py)
DROP_IN = Path("/usr/lib/systemd/system/edge-agent.service.d/update.conf")
POLKIT_RULE = Path("/usr/share/polkit-1/rules.d/50-edge-agent-update.rules")
# where a package could leave something behind
WATCHED = ("/etc", "/opt", "/var/lib", "/usr/bin", "/usr/lib/udev", "/usr/lib/systemd",
           "/usr/lib/sysusers.d", "/usr/lib/modprobe.d", "/etc/modprobe.d", "/usr/share/doc",
           "/usr/share/polkit-1")
# live data of services that other tests run on this machine while this one runs (a
# database's WAL segments come and go); the package never writes there
NOT_OURS = ("/var/lib/postgresql/", "/var/lib/mosquitto/", "/var/lib/apt/lists/",
            # the account databases' backups, which systemd-sysusers (like useradd) makes
            # when it adds the service user: the user is kept on purge by design
            "/etc/passwd-", "/etc/group-", "/etc/shadow-", "/etc/gshadow-")

pytestmark = pytest.mark.slow
needs_root_dpkg = [
    pytest.mark.timeout(900),  # may wait for the other worker (tests/machine_lock.py)
    pytest.mark.skipif(os.geteuid() != 0, reason="dpkg -i needs root: run the suite as root "
                       "(CI does) to test the Debian package"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="not a Debian machine "
                       "(no dpkg-deb)"),
]


def _sh(*cmd: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    # nothing of the test's own Python (PYTHONPATH=the checkout) may leak into the
    # installed program: it must run from /opt/edge-agent alone
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    env["DEBIAN_FRONTEND"] = "noninteractive"
    # stdin closed: a dpkg question (a conffile prompt) fails the step instead of hanging
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env,
                          stdin=subprocess.DEVNULL)
    if ok:
        assert done.returncode == 0, f"{' '.join(cmd)}: {done.stdout[-1500:]}{done.stderr[-1500:]}"
    return done


def _status() -> str:
    done = _sh("dpkg-query", "-W", "-f", "${db:Status-Abbrev}${Version}", PKG, ok=False)
    return done.stdout.strip() if done.returncode == 0 else "not-installed"


def _tree(*roots: str) -> set[str]:
    found: set[str] = set()
    for top in roots:
        for dirpath, dirnames, filenames in os.walk(top):
            found.update(os.path.join(dirpath, n) for n in dirnames + filenames)
    return {p for p in found if not p.startswith(NOT_OURS)}


def _mtimes(top: Path) -> dict[str, int]:
    """Every file's mtime: Python rewrites a stale .pyc in place, a new one adds a file."""
    return {p: os.lstat(p).st_mtime_ns for p in _tree(str(top))}


def _owner(path: Path) -> tuple[str, str, int]:
    st = path.lstat()
    return (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name,
            stat.S_IMODE(st.st_mode))


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture
def clean_machine() -> Iterator[set[str]]:
    """The file list before; afterwards the package purged and the service user gone
    again (if the test made it), whatever happened in between."""
    if _status() != "not-installed":
        pytest.fail(f"{PKG} is installed on this machine ({_status()}); the test would "
                    f"purge it: `dpkg -P {PKG}` first if that is what you want")
    existing = [str(p) for p in (CONF, STATE, PREFIX) if p.exists()]
    if existing:
        pytest.fail(f"this machine already has {', '.join(existing)}; the test's purge "
                    "would delete it")
    had_user, had_gpio = _user_exists(USER), _group_exists("gpio")
    before = _tree(*WATCHED)
    try:
        yield before
    finally:
        if _status() != "not-installed":
            _timed_dpkg("--purge", PKG)
        for path in (CONF, STATE, PREFIX):  # none was there before; a broken purge's rest
            shutil.rmtree(path, ignore_errors=True)
        if not had_user and _user_exists(USER):
            _sh("userdel", USER, ok=False)
        if not had_gpio and _group_exists("gpio"):
            _sh("groupdel", "gpio", ok=False)


def _check_installed(version: str, config_mode: tuple[str, str, int] = ("root", USER, 0o640)
                     ) -> None:
    assert _status() == f"ii {version}"
    user = pwd.getpwnam(USER)
    assert user.pw_dir == str(STATE) and user.pw_shell.endswith("nologin")
    assert user.pw_uid < 1000, "a system user (sysusers range)"
    for group in ("dialout", "plugdev", "gpio", "lp"):
        assert _group_exists(group), group
    assert _owner(CONF) == ("root", USER, 0o750)
    assert _owner(CONF / "agent.toml") == config_mode
    assert _owner(CONF / "keys") == (USER, USER, 0o700)
    assert _owner(CONF / "keys/credential_hmac.key") == (USER, USER, 0o600)
    assert _owner(STATE) == (USER, USER, 0o700)
    for unit in ("/usr/lib/systemd/system/edge-agent.service",
                 "/usr/lib/udev/rules.d/60-edge-agent.rules",
                 "/usr/lib/sysusers.d/edge-agent.conf", "/usr/lib/modprobe.d/edge-agent-nfc.conf",
                 "/usr/lib/systemd/journald.conf.d/edge-agent.conf", str(DROP_IN),
                 str(POLKIT_RULE)):
        assert _owner(Path(unit)) == ("root", "root", 0o644), unit
    assert (ROOT / "systemd/edge-agent-update.conf").read_text() == DROP_IN.read_text()
    assert (ROOT / "systemd/50-edge-agent-update.rules").read_text() == POLKIT_RULE.read_text()
    guard_unit = Path("/usr/lib/systemd/system/edge-agent-update@.service")
    assert _owner(guard_unit) == ("root", "root", 0o644)
    assert (ROOT / "systemd/edge-agent-update@.service").read_text() == guard_unit.read_text()
    _check_update_root()
    unit_text = Path("/usr/lib/systemd/system/edge-agent.service").read_text()
    assert f"ExecStart={PREFIX}/bin/edge-agent run --config /etc/edge-agent/agent.toml" \
        in unit_text
    shipped = _sh("dpkg", "-L", PKG).stdout.split()
    loose = []
    for name in [*shipped, *map(str, _tree(str(CONF), str(STATE)))]:
        st = os.lstat(name)
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & (stat.S_IWOTH | stat.S_ISUID |
                                                          stat.S_ISGID):
            loose.append(f"{name} {stat.filemode(st.st_mode)}")
    assert not loose, f"world-writable or set-id: {loose[:5]}"


def _check_update_root() -> None:
    """postinst made the update root: the package's venv is its environment `package` and
    `current` points at it (the layout's relative link), all the service user's."""
    from agent.update.layout import UpdateLayout

    assert _owner(SOFTWARE) == (USER, USER, 0o700)
    assert _owner(SOFTWARE / "envs") == (USER, USER, 0o700)
    assert os.readlink(SOFTWARE / "envs/package") == str(PREFIX)
    assert os.readlink(SOFTWARE / "current") == "envs/package"
    for link in ("current", "envs/package"):
        assert _owner(SOFTWARE / link)[:2] == (USER, USER), link
    layout = UpdateLayout(SOFTWARE)
    assert layout.current_env() == PREFIX
    assert layout.version_of(layout.current_env()) == project_version()
    assert not any(p.name.endswith(".new") for p in SOFTWARE.iterdir())


def _drop_in_exec_start() -> str:
    """The command the drop-in makes the unit run (its last ExecStart=), for /bin/sh."""
    lines = [ln for ln in DROP_IN.read_text().splitlines() if ln.startswith("ExecStart=")]
    assert lines[0] == "ExecStart=", "the drop-in must reset the unit's ExecStart"
    command = lines[-1].removeprefix("ExecStart=")
    prefix = "/bin/sh -c '"
    assert command.startswith(prefix) and command.endswith("'"), command
    return command[len(prefix):-1]


def _update_status() -> dict[str, object]:
    """`agent.update status` of the installed program, as the service user, on a config
    with [update] (the packaged default has none: updates are opted into)."""
    probe = CONF / "update-probe.toml"
    probe.write_text((ROOT / "packaging/deb/agent.toml").read_text()
                     + '\n[update]\nrelease_public_key = "base64:' + "A" * 43 + '="\n')
    os.chown(probe, 0, grp.getgrnam(USER).gr_gid)
    probe.chmod(0o640)
    try:
        done = _sh("runuser", "-u", USER, "--", str(SOFTWARE / "current/bin/python"), "-m",
                   "agent.update", "status", "-c", str(probe))
    finally:
        probe.unlink()
    return dict(json.loads(done.stdout))


def _check_runs(expect_zone: str) -> None:
    """The program runs from /opt and the shipped config passes check-config, as root and
    as the service user; running it writes no byte-code (all of it was shipped)."""
    files_before = _mtimes(PREFIX)
    helped = _sh(str(PREFIX / "bin/edge-agent"), "--help")
    assert "check-config" in helped.stdout and "provision" in helped.stdout
    checked = _sh("/usr/bin/edge-agent", "check-config", str(CONF / "agent.toml"))
    assert json.loads(checked.stdout)["tenant"] == "unprovisioned"
    as_service = _sh("runuser", "-u", USER, "--", "/usr/bin/edge-agent", "check-config",
                     str(CONF / "agent.toml"))
    assert json.loads(as_service.stdout)["store"].startswith(str(STATE))
    # what the unit runs: refused, in one line, until the device is provisioned
    refused = _sh("runuser", "-u", USER, "--", "/usr/bin/edge-agent", "run", "--config",
                  str(CONF / "agent.toml"), ok=False)
    assert refused.returncode == 2 and "edge-agent provision" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    # what the unit runs with the shipped drop-in: the agent of `current`, refused alike
    via_current = _sh("runuser", "-u", USER, "--", "/bin/sh", "-c", _drop_in_exec_start(),
                      ok=False)
    assert via_current.returncode == 2 and "edge-agent provision" in via_current.stderr, \
        via_current.stderr
    # the update guard installs a release with the running environment's pip
    assert "pip " in _sh(str(PREFIX / "bin/python"), "-m", "pip", "--version").stdout
    assert expect_zone in (CONF / "agent.toml").read_text()
    assert _mtimes(PREFIX) == files_before, "byte-code written at run time"
    analyze = shutil.which("systemd-analyze")
    if analyze:
        verified = _sh(analyze, "verify", "/usr/lib/systemd/system/edge-agent.service", ok=False)
        assert verified.returncode == 0 and verified.stderr == "", verified.stderr
        # systemd reads the drop-in with the unit (its ExecStart replaces the packaged one)
        shown = _sh(analyze, "cat-config", "systemd/system/edge-agent.service").stdout
        assert f"# {DROP_IN}" in shown and shown.index(f"# {DROP_IN}") > shown.index(
            "# /usr/lib/systemd/system/edge-agent.service"), shown


def _timed_dpkg(*args: str) -> float:
    """dpkg, waiting (up to 2 min) while another process on this shared machine holds
    dpkg's lock; any other failure fails the test."""
    deadline = time.monotonic() + 120
    while True:
        started = time.monotonic()
        done = _sh("dpkg", *args, ok=False)
        if done.returncode == 0:
            return time.monotonic() - started
        locked = "locked by another process" in done.stderr
        assert locked and time.monotonic() < deadline, \
            f"dpkg {' '.join(args)}: {done.stdout[-1500:]}{done.stderr[-1500:]}"
        time.sleep(2)


@needs_root_dpkg[0]
@needs_root_dpkg[1]
@needs_root_dpkg[2]
def test_install_upgrade_remove_purge(builds: Builds, clean_machine: set[str]) -> None:
    before = clean_machine
    version = project_version()
    wants = Path("/etc/systemd/system/multi-user.target.wants/edge-agent.service")

    install_s = _timed_dpkg("-i", str(builds.old))
    _check_installed(f"{version}-1")
    _check_runs('"Europe/Ljubljana"')
    assert not wants.exists(), "a fresh install must not enable an unprovisioned agent"
    # every shipped file matches the package's md5sums (postinst changed none)
    assert _sh("dpkg", "--verify", PKG).stdout == ""
    # the extras picked at build time are in, the others are not
    python = str(PREFIX / "bin/python")
    _sh(python, "-c", "import serial, sdnotify, prometheus_client")
    missing = _sh(python, "-c", "import nfc", ok=False)
    assert missing.returncode == 1 and "No module named 'nfc'" in missing.stderr
    control = _sh("dpkg-query", "-W", "-f", "${Depends}", PKG).stdout
    assert Path("/usr/bin/python3").resolve().name in control.split(", "), control

    # the technician's edits and enabling survive an upgrade; the device key is not remade
    _sh("systemctl", "enable", "edge-agent.service")
    assert wants.is_symlink()
    conf = CONF / "agent.toml"
    conf.write_text(conf.read_text().replace('"Europe/Ljubljana"', '"Europe/Vienna"'))
    # as `edge-agent provision` leaves it: the service user's, 0600
    service = pwd.getpwnam(USER)
    os.chown(conf, service.pw_uid, service.pw_gid)
    conf.chmod(0o600)
    key = (CONF / "keys/credential_hmac.key").read_bytes()
    # the device had updated itself to 9.9.9 (an environment its guard made, `current`)
    ota = SOFTWARE / "envs/9.9.9"
    ota.mkdir()
    (ota / ".installed").write_text(json.dumps({"version": "9.9.9", "channel": "stable"}))
    for path in (ota, ota / ".installed"):
        os.chown(path, service.pw_uid, service.pw_gid)
    from agent.update.layout import UpdateLayout

    UpdateLayout(SOFTWARE).point(SOFTWARE / "current", ota)
    os.lchown(SOFTWARE / "current", service.pw_uid, service.pw_gid)
    upgrade_s = _timed_dpkg("-i", str(builds.new))
    _check_installed(f"{version}-2", config_mode=(USER, USER, 0o600))
    _check_runs('"Europe/Vienna"')
    assert (CONF / "keys/credential_hmac.key").read_bytes() == key
    assert wants.is_symlink(), "upgrade lost the enabled state"
    # the upgrade made the packaged version current; the one it replaced is `previous`
    assert os.readlink(SOFTWARE / "previous") == "envs/9.9.9"
    status = _update_status()
    assert (status["current"], status["previous"]) == (version, "9.9.9"), status

    # remove: the program goes, config and state stay
    store = STATE / "agent.sqlite3"
    store.write_bytes(b"unsent events")
    _timed_dpkg("-r", PKG)
    assert _status() == f"rc {version}-2"
    for gone in (PREFIX, Path("/usr/bin/edge-agent"),
                 Path("/usr/lib/systemd/system/edge-agent.service"),
                 Path("/usr/lib/udev/rules.d/60-edge-agent.rules")):
        assert not os.path.lexists(gone), gone
    assert store.read_bytes() == b"unsent events"
    assert '"Europe/Vienna"' in conf.read_text()
    # the update root is state: kept, its link to the removed program dangling
    assert os.readlink(SOFTWARE / "current") == "envs/package"
    assert (SOFTWARE / "envs/9.9.9/.installed").is_file()

    # purge: nothing of the package is left; the service user is kept (postrm says why)
    _timed_dpkg("-P", PKG)
    assert _status() == "not-installed"
    after = _tree(*WATCHED)
    assert sorted(after - before) == [], "left behind after purge"
    assert sorted(before - after) == [], "removed by the package but not its own"
    assert _user_exists(USER)

    figures = {
        "package_bytes": {"A": builds.old.stat().st_size, "B": builds.new.stat().st_size},
        "build_s": [round(s, 1) for s in builds.seconds],
        "install_s": round(install_s, 1), "upgrade_s": round(upgrade_s, 1),
        "load": os.getloadavg(),
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "deb-package.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))


def test_build_refuses_unknown_extra_and_bad_version() -> None:
    for args, message in ((["--extras", "nfc,bridge"], "unknown extra(s) bridge"),
                          (["--version", "v1 beta"], "is not a Debian version")):
        done = subprocess.run([sys.executable, str(ROOT / "scripts/build_deb.py"), *args,
                               "--out", "/nonexistent-never-written"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert re.match(r"^build_deb: ", done.stderr)
