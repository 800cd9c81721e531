"""The technician's whole flow with real processes (docs/technician.md §3): a real
Mosquitto with the shipped TLS listener and ACL (rendered by ``cloud-bridge ca
broker-config``), a real ``cloud-bridge serve`` (SQLite file or PostgreSQL) with
``--ca-dir``; staff issue a code on the web page (headless Chromium) and with ``cloud-bridge
enrolment issue``; ``edge-agent provision`` redeems each on a fresh folder, gets its
certificate, and ``edge-agent run`` comes online over mTLS: the fleet page shows it.
Then the refusals: garbled, mistyped, wrong tenant, expired, used twice, too many
attempts: each is one Slovenian line with exit code 2, and nothing is left on the device."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from playwright.sync_api import Page
from sqlalchemy import update
from typer.testing import CliRunner

from cloud_bridge.cli import app as bridge_app
from cloud_bridge.db_schema import make_engine
from cloud_bridge.enrolment_service import enrolment_codes
from tests.agent_process import AgentProcess
from tests.bridge.conftest import db_url, pg_url  # noqa: F401 - fixtures
from tests.browser import chromium
from tests.mqtt_broker import MOSQUITTO, free_port, wait_for_port
from tests.security.fleet_broker import build_share_guard

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "enrolment test password"
ADMIN = "admin@t1.si"
TOKEN = "enrolment-test-operator-token"


@dataclass
class Site:
    base: str
    db_url: str
    ca_dir: Path
    work: Path


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**os.environ, **(env or {})})


def _bridge_cli(*args: str, env: dict[str, str] | None = None) -> str:
    """``cloud-bridge …`` in this process (the same commands, a few seconds less each on a
    loaded machine); ``issue_by_cli`` runs it as a process of its own."""
    done = CliRunner().invoke(bridge_app, list(args), env=env)
    assert done.exit_code == 0, (args, done.output)
    return done.stdout


def issue_by_cli(site: Site, device: str) -> str:
    done = _run("-m", "cloud_bridge", "enrolment", "issue", "--tenant", "t1", "--device",
                device, "--site", "center", "--ca-dir", str(site.ca_dir), "--db", site.db_url)
    assert done.returncode == 0, done.stderr
    assert f"t1/{device}" in done.stderr
    code = done.stdout.strip()
    assert len(code) == 19 and "\n" not in code
    return code


def _broker(work: Path, ca_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Mosquitto with the listener and ACL exactly as ``ca broker-config`` renders them."""
    out = work / "broker"
    _bridge_cli("ca", "server", "--dir", str(ca_dir), "--tenant", "t1", "--out", str(out),
                "--host", "127.0.0.1", "--host", "localhost")
    _bridge_cli("ca", "bridge", "--dir", str(ca_dir), "--tenant", "t1", "--out", str(out),
                "--name", "b1")
    port = free_port()
    _bridge_cli("ca", "broker-config", "--dir", str(ca_dir), "--tenant", "t1", "--out",
                str(out / "conf.d"), "--port", str(port), "--server-cert",
                str(out / "server.crt"), "--server-key", str(out / "server.key"),
                "--bridge", "b1", "--bind", "127.0.0.1",
                "--share-guard", str(build_share_guard(out / "plugin")))
    main = ["per_listener_settings true", "persistence false", "log_type all",
            f"include_dir {out / 'conf.d'}"]
    if os.geteuid() == 0:  # Mosquitto would switch to its own user, who cannot read tmp
        main.insert(0, "user root")
    (work / "mosquitto.conf").write_text("\n".join(main) + "\n")
    log = open(work / "mosquitto.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen([MOSQUITTO, "-c", str(work / "mosquitto.conf")], stdout=log,
                            stderr=log)
    log.close()
    wait_for_port(port)
    return proc, port


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[Site]:  # noqa: F811
    keys, ca_dir = tmp_path / "keys", tmp_path / "ca"
    for tenant in ("t1", "t2"):
        _bridge_cli("tenant", "create", tenant, "--keys-dir", str(keys))
    _bridge_cli("ca", "init", "--dir", str(ca_dir), "--tenant", "t1")
    broker, port = _broker(tmp_path, ca_dir)
    _bridge_cli("enrolment", "broker", "--ca-dir", str(ca_dir), "--tenant", "t1",
                "--host", "127.0.0.1", "--port", str(port))
    _bridge_cli("user", "create", "--tenant", "t1", "--username", ADMIN, "--role",
                "administrator", "--db", db_url, env={"BRIDGE_USER_PASSWORD": PASSWORD})
    http = free_port()
    out = tmp_path / "broker"
    log = open(tmp_path / "bridge.log", "wb")  # noqa: SIM115
    bridge = subprocess.Popen(
        [sys.executable, "-m", "cloud_bridge", "serve", "--db", db_url, "--mqtt-port",
         str(port), "--mqtt-tls-ca", str(ca_dir / "t1" / "ca.crt"), "--mqtt-tls-cert",
         str(out / "bridge-b1.crt"), "--mqtt-tls-key", str(out / "bridge-b1.key"),
         "--http-port", str(http), "--keys-dir", str(keys), "--ca-dir", str(ca_dir),
         "--stats-interval", "5"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "BRIDGE_API_TOKEN": TOKEN})
    log.close()
    try:
        wait_for_port(http, timeout=60)
        yield Site(f"http://127.0.0.1:{http}", db_url, ca_dir, tmp_path)
    finally:
        bridge.terminate()
        try:
            bridge.wait(15)
        except subprocess.TimeoutExpired:
            bridge.kill()
            bridge.wait()
        broker.terminate()
        broker.wait(10)


def provision(site: Site, code: str, name: str, *extra: str
              ) -> tuple[subprocess.CompletedProcess[str], Path]:
    target = site.work / name / "etc"
    done = _run("-m", "agent", "provision", "--bridge", site.base, "--code", code,
                "--dir", str(target), "--data-dir", str(site.work / name / "var"), *extra)
    return done, target


def refused(done: subprocess.CompletedProcess[str], target: Path, words: str) -> None:
    """Exit code 2, one Slovenian line, and nothing on the device."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    line = done.stderr.strip()
    assert "\n" not in line and line.startswith("namestitev ni uspela: "), line
    assert words in line, line
    left = sorted(str(p) for p in target.rglob("*")) if target.exists() else []
    assert left == [], left
    assert not (target.parent / "var").exists()


def login(page: Page, site: Site) -> None:
    page.goto(f"{site.base}/login")
    page.fill("#username", ADMIN)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.base}/t/t1/fleet")


def issue_on_the_page(page: Page, site: Site, device: str) -> str:
    page.click("#enrolment-link a")
    page.wait_for_url(f"{site.base}/t/t1/enrolment")
    page.fill("#f-device", device)
    page.fill("#f-site", "center")
    page.click("#new-enrolment button[type=submit]")
    code = page.text_content("#issued-code code.enrolment-code")
    assert code and len(code) == 19, code
    assert f"--code {code}" in (page.text_content("#issued-code pre") or "")
    return code.strip()


def wait_online(page: Page, site: Site, devices: tuple[str, ...], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        page.goto(f"{site.base}/t/t1/fleet")
        if all(page.query_selector(f"tr[data-device='{d}'] td.online") for d in devices):
            return
        assert time.monotonic() < deadline, page.text_content("main")
        time.sleep(1)


def device_cn(target: Path) -> str:
    cert = x509.load_pem_x509_certificate((target / "tls" / "device.crt").read_bytes())
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_technician_flow_web_and_cli_codes_then_online_over_mtls(
        site: Site, artifacts_dir: Path) -> None:
    kind = "pg" if site.db_url.startswith("postgresql") else "sqlite"
    agents: list[AgentProcess] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(20_000)
        try:
            login(page, site)
            web_code = issue_on_the_page(page, site, "gate-01")
            page.screenshot(path=str(artifacts_dir / f"enrolment-{kind}-code.png"))
            cli_code = issue_by_cli(site, "gate-02")

            # a code of tenant t1 is refused for t2, and not used up by it
            done, target = provision(site, cli_code, "wrong-tenant", "--tenant", "t2")
            refused(done, target, "ni za najemnika 't2'")

            for code, name in ((web_code, "gate-01"), (cli_code, "gate-02")):
                done, target = provision(site, code, name, "--tenant", "t1")
                assert done.returncode == 0, done.stderr
                assert f"nameščeno: t1/{name}" in done.stdout
                assert device_cn(target) == f"t1/{name}"  # the broker's ACL identity
                agents.append(AgentProcess(target / "agent.toml", site.work / f"{name}.log"))
            wait_online(page, site, ("gate-01", "gate-02"))
            page.screenshot(path=str(artifacts_dir / f"enrolment-{kind}-online.png"))
        finally:
            for agent in agents:
                agent.stop()

    # used twice: refused, and the fresh folder stays empty
    done, target = provision(site, web_code, "again")
    refused(done, target, "že uporabljena")
    # garbled: refused on the device before any request
    done, target = provision(site, "ABCD-EFGH-0000", "garbled")
    refused(done, target, "ni prave oblike")
    # mistyped (well formed, not issued): the bridge does not know it
    typo = ("B" if cli_code[0] != "B" else "C") + cli_code[1:]
    done, target = provision(site, typo, "typo")
    refused(done, target, "ne pozna")
    # expired
    expiring = _bridge_cli("enrolment", "issue", "--tenant", "t1", "--device", "gate-03",
                           "--site", "center", "--ca-dir", str(site.ca_dir), "--db",
                           site.db_url).strip()
    engine = make_engine(site.db_url, create=False)
    with engine.begin() as conn:
        conn.execute(update(enrolment_codes).where(enrolment_codes.c.device == "gate-03")
                     .values(expires_ms=int(time.time() * 1000) - 1))
    engine.dispose()
    done, target = provision(site, expiring, "expired")
    refused(done, target, "potekla")

    # too many refused attempts from one address: even a good code waits
    fresh = _bridge_cli("enrolment", "issue", "--tenant", "t1", "--device", "gate-04",
                        "--site", "center", "--ca-dir", str(site.ca_dir), "--db",
                        site.db_url).strip()
    statuses = [httpx.post(f"{site.base}/api/enrolment/redeem",
                           json={"code": "AAAA-BBBB-CCCC-DDDD"}).status_code
                for _ in range(8)]
    assert statuses[-1] == 429 and 404 in statuses, statuses
    done, target = provision(site, fresh, "limited")
    refused(done, target, "preveč napačnih poskusov")
    api_issues_codes_for_the_operator_only(site)


def api_issues_codes_for_the_operator_only(site: Site) -> None:
    url = f"{site.base}/api/enrolment/codes"
    body = {"tenant": "t1", "device": "gate-09", "site": "center"}
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers={"Authorization": "Bearer wrong"}
                      ).status_code == 401
    made = httpx.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert made.status_code == 201, made.text
    # t2 has keys but no device CA here: no code that could never be redeemed
    other = httpx.post(url, json={**body, "tenant": "t2"},
                       headers={"Authorization": f"Bearer {TOKEN}"})
    assert other.status_code == 503 and "t2" in other.json()["detail"]
    # a tenant's own token issues for its tenant only
    token = _bridge_cli("tenant", "token", "t1", "--keys-dir", str(site.work / "keys")).strip()
    own = httpx.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
    assert own.status_code == 201, own.text
    assert httpx.post(url, json={**body, "tenant": "t2"},
                      headers={"Authorization": f"Bearer {token}"}).status_code == 401
