"""``edge-agent doctor``: check a device the way a technician would, and say what to fix.

Each check returns a :class:`Finding` (ok / warn / fail / unknown) with a detail and, when
something is wrong, what to do about it. Read-only throughout: the store is opened
read-only, peripherals are asked through a running agent's control socket (or opened
briefly when no agent runs), the broker gets a CONNECT with a client id of its own so a
running agent is not disconnected.
"""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, cast

from agent.config import AgentConfig, load_config
from agent.errors import DEVICE_ERRORS
from agent.store.maintenance import DEFAULT_MIN_FREE_MB, integrity_problems, recovery_steps
from agent.store.schema import SCHEMA_VERSION
from drivers.protocols import CardReader, Display, Gate, Printer

OK, WARN, FAIL, UNKNOWN = "ok", "warn", "fail", "unknown"
ENROLMENT_FILE = "enrolment.json"  # written by `edge-agent provision`, no secrets in it
CLOCK_WARN_S, CLOCK_FAIL_S = 2.0, 30.0  # signed QR tokens tolerate ±60 s
CERT_WARN_DAYS = 30
BACKLOG_WARN_S, BACKLOG_FAIL_S = 3600.0, 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    status: str
    detail: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class DoctorOptions:
    bridge_url: str | None = None
    min_free_mb: int = DEFAULT_MIN_FREE_MB
    timeout_s: float = 5.0


def run_checks(config_path: Path, options: DoctorOptions = DoctorOptions()) -> list[Finding]:
    try:
        cfg = load_config(config_path)
    except DEVICE_ERRORS as exc:
        return [Finding("config", FAIL, str(exc),
                        f"edit {config_path} (the message names the key), then run "
                        f"`edge-agent check-config {config_path}`")]
    findings = [Finding("config", OK, f"{cfg.tenant}/{cfg.device} at site {cfg.site}")]
    checks: list[Callable[[], list[Finding]]] = [
        lambda: check_peripherals(cfg, options.timeout_s),
        lambda: [check_clock(cfg, options.bridge_url, options.timeout_s)],
        lambda: [check_time_sync()],
        lambda: [check_disk(cfg, options.min_free_mb)],
        lambda: [check_broker(cfg, options.timeout_s)],
        lambda: check_certificates(cfg),
        lambda: check_store(cfg),
    ]
    for check in checks:
        try:
            findings += check()
        except Exception as exc:  # a broken check is a finding, never a crash
            findings.append(Finding("doctor", UNKNOWN, f"a check failed to run: {exc!r}"))
    return findings


# -- peripherals ------------------------------------------------------------------------

def check_peripherals(cfg: AgentConfig, timeout_s: float) -> list[Finding]:
    from agent.control_client import AgentUnreachable, ControlClient

    try:
        reply = ControlClient(cfg.socket_path, timeout=timeout_s).request("status")
        source = "running agent"
        rows = [(p["id"], p["role"], p["url"], p["health"], p["detail"])
                for p in reply.get("peripherals", [])]
        agent = Finding("agent", OK, f"running, up {reply.get('uptime_s', '?')} s, "
                        f"{reply.get('decisions', 0)} decisions")
    except (AgentUnreachable, OSError):
        source = "opened briefly"
        agent = Finding("agent", WARN, f"not running (no answer on {cfg.socket_path})",
                        "systemctl start edge-agent; journalctl -u edge-agent -n 50 if it "
                        "does not stay up")
        rows = _open_briefly(cfg)
    out = [agent]
    for pid, role, url, health, detail in rows:
        name = f"{role} {pid}"
        text = health + (f": {detail}" if detail else "") + f" ({url or '?'}, {source})"
        if health == "ok":
            out.append(Finding(name, OK, text))
        elif health == "degraded":
            out.append(Finding(name, WARN, text, _peripheral_fix(role, url)))
        else:
            out.append(Finding(name, FAIL, text, _peripheral_fix(role, url)))
    if not rows:
        out.append(Finding("peripherals", WARN, "none configured",
                           "add [[readers]]/[[gates]] to the config"))
    return out


def _open_briefly(cfg: AgentConfig) -> list[tuple[str, str, str, str, str]]:
    from agent.daemon_parts import open_peripherals

    try:
        found = open_peripherals(cfg)
    except DEVICE_ERRORS as exc:
        return [("?", "peripheral", "", "down", str(exc))]
    rows = []
    for role, group in (("display", found.displays), ("gate", found.gates),
                        ("printer", found.printers), ("reader", found.readers)):
        for pid, p in group.items():
            try:
                _start_alone(role, p)
                h = p.health()
                rows.append((pid, role, getattr(p, "url", ""), h.state.value, h.detail))
            except Exception as exc:
                rows.append((pid, role, getattr(p, "url", ""), "down", str(exc)))
            finally:
                try:
                    p.stop()
                except Exception:  # stopping is best effort here
                    rows.append((pid, role, getattr(p, "url", ""), "degraded",
                                 "did not stop cleanly"))
    return rows


def _start_alone(role: str, peripheral: CardReader | Display | Gate | Printer) -> None:
    """Start a peripheral with nobody listening (a reader's reads go nowhere)."""
    if role == "reader":
        cast(CardReader, peripheral).start(lambda _read: None)
    else:
        cast("Display | Gate | Printer", peripheral).start()


def _peripheral_fix(role: str, url: str) -> str:
    scheme = url.partition(":")[0]
    hints = {
        "nfc": "check the USB cable, `lsusb` for the reader, and that pn533 is blacklisted "
               "(systemd/blacklist-pn533.conf)",
        "pcsc": "systemctl status pcscd; `pcsc_scan` must list the reader",
        "serial": "check the cable and the tty path; the agent user needs group dialout",
        "serial-relay": "check the relay board's USB cable and tty path (group dialout)",
        "gpio": "check the wiring; the agent user needs group gpio",
        "escpos-usb": "printer on and paper loaded? `lsusb` must list it (udev rule, group lp)",
        "escpos-net": "printer on and reachable on port 9100?",
        "escpos-serial": "printer on? check the cable and tty path (group dialout)",
        "escpos-file": "printer on? the device file must exist (usblp module, group lp)",
        "camera": "`v4l2-ctl --list-devices` must list the camera (group video); for a "
                  "file source check the path",
        "sim": "simulated back-end: check its options in the config",
    }
    return hints.get(scheme, f"check the {role}'s power and cable, then `edge-agent doctor`")


# -- clock ------------------------------------------------------------------------------

def bridge_url_for(cfg: AgentConfig, explicit: str | None) -> str | None:
    if explicit:
        return explicit
    enrolment = cfg.base_dir / ENROLMENT_FILE
    try:
        return str(json.loads(enrolment.read_text())["bridge"])
    except (OSError, ValueError, KeyError):
        return None


def check_clock(cfg: AgentConfig, bridge_url: str | None, timeout_s: float) -> Finding:
    url = bridge_url_for(cfg, bridge_url)
    if url is None:
        return Finding("clock skew", UNKNOWN, "no bridge known to compare with (no --bridge, "
                       f"no {ENROLMENT_FILE})", "run with --bridge https://… to measure")
    before = time.time()
    try:
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=timeout_s) as r:
            date = r.headers.get("Date")
    except urllib.error.HTTPError as exc:  # any answer carries a Date
        date = exc.headers.get("Date")
    except (urllib.error.URLError, OSError) as exc:
        return Finding("clock skew", UNKNOWN, f"bridge {url} unreachable: {exc}",
                       "check the network; the bridge URL is in enrolment.json")
    after = time.time()
    if not date:
        return Finding("clock skew", UNKNOWN, f"bridge {url} sent no Date header")
    theirs = parsedate_to_datetime(date).timestamp()
    # the Date header has 1 s resolution: compare with the middle of the request
    skew = (before + after) / 2 - theirs
    skew = 0.0 if abs(skew) < 1.0 + (after - before) / 2 else skew
    text = ("device clock agrees with the bridge" if skew == 0 else
            f"device clock {abs(skew):.1f} s {'behind' if skew < 0 else 'ahead of'} the bridge")
    text += f" ({url})"
    fix = ("set the time (timedatectl set-ntp true; check that UDP 123 or the site's NTP "
           "server is reachable); signed QR codes are refused beyond ±60 s")
    if abs(skew) > CLOCK_FAIL_S:
        return Finding("clock skew", FAIL, text, fix)
    if abs(skew) > CLOCK_WARN_S:
        return Finding("clock skew", WARN, text, fix)
    return Finding("clock skew", OK, text)


def check_time_sync() -> Finding:
    try:
        done = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                              capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return Finding("time sync", UNKNOWN, "timedatectl not available")
    value = done.stdout.strip()
    if done.returncode != 0 or value not in ("yes", "no"):
        return Finding("time sync", UNKNOWN, "timedatectl gave no answer (no systemd running?)")
    if value == "no":
        return Finding("time sync", WARN, "the system clock is not NTP-synchronised",
                       "timedatectl set-ntp true; systemctl status systemd-timesyncd")
    return Finding("time sync", OK, "NTP-synchronised")


# -- disk -------------------------------------------------------------------------------

def check_disk(cfg: AgentConfig, min_free_mb: int) -> Finding:
    path = cfg.data_path
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = shutil.disk_usage(path)
    text = f"{usage.free / 1e6:.0f} MB free of {usage.total / 1e6:.0f} MB at {path}"
    fix = ("free space: journalctl --vacuum-size=50M, remove old files; check that events "
           "are acknowledged (outbox backlog below)")
    if usage.free < min_free_mb * 1024 * 1024:
        return Finding("disk space", FAIL, text + f" (alarm below {min_free_mb} MB)", fix)
    if usage.free < 2 * min_free_mb * 1024 * 1024:
        return Finding("disk space", WARN, text, fix)
    return Finding("disk space", OK, text)


# -- broker -----------------------------------------------------------------------------

def check_broker(cfg: AgentConfig, timeout_s: float) -> Finding:
    mq = cfg.mqtt
    if mq is None:
        return Finding("broker", WARN, "no [mqtt] in the config: events stay on the device",
                       "provision the device (edge-agent provision) or add [mqtt]")
    where = f"{mq.host}:{mq.port}"
    try:
        with socket.create_connection((mq.host, mq.port), timeout=timeout_s):
            pass
    except OSError as exc:
        return Finding("broker", FAIL, f"{where}: TCP connect failed ({exc.strerror or exc})",
                       "check the network/firewall and that the broker runs "
                       "(systemctl status mosquitto on the server)")
    return _mqtt_connect(cfg, where, timeout_s)


def _mqtt_connect(cfg: AgentConfig, where: str, timeout_s: float) -> Finding:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    mq = cfg.mqtt
    assert mq is not None
    result: dict[str, Any] = {}
    done = threading.Event()

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        result["reason"] = reason
        done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2,
                         client_id=f"doctor-{cfg.tenant}-{cfg.device}-{int(time.time())}",
                         protocol=mqtt.MQTTv5)
    client.on_connect = on_connect
    if mq.username:
        client.username_pw_set(mq.username, mq.password)
    try:
        if mq.tls_ca:
            client.tls_set(ca_certs=str(cfg.path(mq.tls_ca)),
                           certfile=str(cfg.path(mq.tls_cert)) if mq.tls_cert else None,
                           keyfile=str(cfg.path(mq.tls_key)) if mq.tls_key else None)
        client.connect(mq.host, mq.port, keepalive=10)
        client.loop_start()
        answered = done.wait(timeout_s)
    except (OSError, ValueError) as exc:
        return Finding("broker", FAIL, f"{where}: MQTT/TLS connect failed ({exc})",
                       "check the tls_* files of [mqtt] and the broker's certificate")
    finally:
        client.loop_stop()
        client.disconnect()
    if not answered:
        return Finding("broker", FAIL, f"{where}: no CONNACK within {timeout_s:.0f} s",
                       "is this port an MQTT listener? (TLS port without tls_ca?)")
    reason = result["reason"]
    if reason.is_failure:
        return Finding("broker", FAIL, f"{where}: broker refused the connection ({reason})",
                       "credentials/certificate not accepted: re-provision the device or "
                       "check the broker's ACL/password file")
    return Finding("broker", OK, f"{where}: MQTT CONNECT accepted")


# -- certificates -----------------------------------------------------------------------

def check_certificates(cfg: AgentConfig) -> list[Finding]:
    from cryptography import x509

    mq = cfg.mqtt
    files = [(k, v) for k, v in (("tls_ca", mq.tls_ca), ("tls_cert", mq.tls_cert))
             if v] if mq else []
    if not files:
        return [Finding("certificates", OK, "no TLS files configured")]
    out = []
    now = datetime.now(UTC)
    for key, value in files:
        path = cfg.path(value)
        name = f"certificate {key}"
        try:
            certs = x509.load_pem_x509_certificates(path.read_bytes())
        except (OSError, ValueError) as exc:
            out.append(Finding(name, FAIL, f"{path}: cannot read a PEM certificate ({exc})",
                               "re-provision the device (edge-agent provision --force)"))
            continue
        cert = min(certs, key=lambda c: c.not_valid_after_utc)
        left = cert.not_valid_after_utc - now
        text = f"{path.name}: valid until {cert.not_valid_after_utc:%Y-%m-%d}"
        fix = "issue a new enrolment code in the bridge and run edge-agent provision --force"
        if cert.not_valid_before_utc > now:
            out.append(Finding(name, FAIL, f"{path.name}: not valid before "
                               f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (clock?)",
                               "check the clock skew above"))
        elif left.total_seconds() <= 0:
            out.append(Finding(name, FAIL, text + " (expired)", fix))
        elif left.days < CERT_WARN_DAYS:
            out.append(Finding(name, WARN, text + f" ({left.days} days left)", fix))
        else:
            out.append(Finding(name, OK, text))
    return out


# -- store and outbox -------------------------------------------------------------------

def check_store(cfg: AgentConfig) -> list[Finding]:
    path = cfg.store_path
    if not path.exists():
        return [Finding("store", OK, f"{path} not created yet (the agent creates it)")]
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        return [Finding("store", FAIL, f"{path}: cannot open ({exc})", recovery_steps(path))]
    try:
        try:
            problems = integrity_problems(conn)
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            return [Finding("store", FAIL, f"{path}: {exc}", recovery_steps(path))]
        if problems:
            return [Finding("store", FAIL, f"{path}: integrity check failed: "
                            f"{'; '.join(problems)}", recovery_steps(path))]
        if version > SCHEMA_VERSION:
            return [Finding("store", FAIL, f"schema v{version} is newer than this agent "
                            f"(v{SCHEMA_VERSION})", "install the newer agent version")]
        found = [Finding("store", OK, f"{path.name}: integrity ok, schema v{version}")]
        if version == 0:
            return found
        return [*found, _backlog(conn, cfg)]
    finally:
        conn.close()


def _backlog(conn: sqlite3.Connection, cfg: AgentConfig) -> Finding:
    depth, oldest = conn.execute("SELECT COUNT(*), MIN(created_ms) FROM outbox").fetchone()
    if not depth:
        return Finding("outbox backlog", OK, "every event acknowledged by the bridge")
    age = max(time.time() - oldest / 1000, 0.0)
    text = f"{depth} events waiting, oldest {_duration(age)} old"
    fix = ("events are not acknowledged: check the broker above, the bridge "
           "(its /healthz), and `journalctl -u edge-agent | grep mqtt`")
    if cfg.mqtt is None:
        return Finding("outbox backlog", WARN, text + " (no [mqtt]: nothing sends them)",
                       "provision the device so events reach the cloud")
    if age > BACKLOG_FAIL_S:
        return Finding("outbox backlog", FAIL, text, fix)
    if age > BACKLOG_WARN_S:
        return Finding("outbox backlog", WARN, text, fix)
    return Finding("outbox backlog", OK, text)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# -- output -----------------------------------------------------------------------------

def failed(findings: list[Finding]) -> bool:
    return any(f.status == FAIL for f in findings)


def as_json(findings: list[Finding]) -> str:
    return json.dumps({"ok": not failed(findings), "findings": [asdict(f) for f in findings]},
                      indent=2, ensure_ascii=False)


def render(findings: list[Finding]) -> Any:
    from rich.markup import escape
    from rich.table import Table

    style = {OK: "green", WARN: "yellow", FAIL: "bold red", UNKNOWN: "dim"}
    table = Table(title="edge-agent doctor", show_lines=False)
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    table.add_column("what to fix", overflow="fold")
    for f in findings:
        table.add_row(escape(f.check), f"[{style.get(f.status, '')}]{f.status.upper()}[/]",
                      escape(f.detail), escape(f.fix))
    return table
