"""``cloud-bridge serve --workers 2``: two processes serve HTTP from one port, a
logged-in browser's session holds whichever of them answers, and the bridge process
itself keeps the MQTT link; each worker publishes what its pages change (a new member's
signed change reaches the broker whichever worker stored it)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from cloud_bridge.web.auth import WebAuth
from cloud_bridge.web.web_app import ensure_web_schema
from tests.bridge.conftest import stop_process
from tests.cloud_harness import CloudHarness, wait_until
from tests.mqtt_broker import free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "workers test password"


def start_serve(db_url: str, keys_dir: Path, broker_port: int, http_port: int,
                log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "cloud_bridge", "serve", "--db", db_url,
             "--mqtt-port", str(broker_port), "--http-port", str(http_port),
             "--keys-dir", str(keys_dir), "--insecure-dev", "--workers", "2"],
            cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


@pytest.mark.slow
def test_two_workers_serve_one_session(db_url: str, engine: Engine, keys_dir: Path,
                                       tenant: str, broker_port: int,
                                       tmp_path: Path) -> None:
    ensure_web_schema(engine)
    user = f"reception@{tenant}.si"
    WebAuth(engine).create_user(tenant, user, PASSWORD, "reception")
    port, log = free_port(), tmp_path / "serve.log"
    proc = start_serve(db_url, keys_dir, broker_port, port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, log)
        with httpx.Client(base_url=base) as c:
            c.get("/login")
            r = c.post("/login", data={"username": user, "password": PASSWORD,
                                       "csrf_token": c.cookies.get("es_login_csrf",
                                                                   path="/login")})
            assert r.status_code == 303, r.text
            session = c.cookies["es_session"]
        staff = WebAuth(engine).session(session)
        assert staff is not None
        changes = f"es/v1/{tenant}/members/changes"
        cloud = CloudHarness(broker_port, tenant)
        served_pages: dict[int, int] = {}
        created = 0
        try:
            for i in range(60):
                # a new connection each time; the page and the form go over the
                # connection whose worker just told its pid
                with httpx.Client(base_url=base, cookies={"es_session": session}) as c:
                    pid = c.get("/healthz").json()["pid"]
                    page = c.get(f"/t/{tenant}/live")
                    assert page.status_code == 200 and "fig-occupancy" in page.text, page.text
                    assert page.headers["server-timing"].startswith("app;dur=")
                    made = c.post(f"/t/{tenant}/members", data={
                        "first_name": "Ana", "last_name": f"Novak {i}",
                        "csrf_token": staff.csrf})
                    assert made.status_code == 303, made.text
                    created += 1
                    served_pages[pid] = served_pages.get(pid, 0) + 1
                if len(served_pages) == 2 and min(served_pages.values()) >= 3:
                    break
            assert len(served_pages) == 2, f"one worker answered everything: {served_pages}"
            published: list[bytes] = []

            def all_published() -> bool:
                while not cloud.messages.empty():
                    topic, payload = cloud.messages.get()
                    if topic == changes:
                        published.append(payload)
                return len(published) >= created

            wait_until(all_published, 20, f"{created} member changes on {changes}")
        finally:
            cloud.close()
        assert all(parent_of(pid) == proc.pid for pid in served_pages)  # not strays
        assert "connected to" in log.read_text()  # the bridge process's own MQTT link
    finally:
        stop_process(proc)
    assert proc.returncode == 0, log.read_text()
    for pid in served_pages:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived the bridge"
