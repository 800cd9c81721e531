"""The member's phone QR page: secret-link authentication, fresh signed tokens that the
agent's offline verifier accepts, and the page itself in headless Chromium (the QR in the
screenshot is decoded with pyzbar and verified like a gate would)."""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloud_bridge.member_qr import (
    MemberQrCredential,
    make_member_qr_router,
    member_link,
    member_link_token,
)
from contracts.qr_token import TOKEN_CHARS, verify_token
from tests.mqtt_broker import free_port, wait_for_port

LINK_KEY = b"L" * 32
NOW = 1_780_000_000
CRED = MemberQrCredential(str(uuid.uuid4()), NOW - 86400, NOW + 86400, first_name="Ana")


class Fleet:
    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.creds: dict[tuple[str, str], MemberQrCredential] = {("t1", "m1"): CRED}
        self.now = float(NOW)

    def app(self) -> FastAPI:
        app = FastAPI()
        app.include_router(make_member_qr_router(
            lambda tenant: self.key, lambda t, m: self.creds.get((t, m)), LINK_KEY,
            clock=lambda: self.now))
        return app


@pytest.fixture
def fleet() -> Fleet:
    return Fleet()


def bearer(tenant: str = "t1", member: str = "m1", epoch: int = 0) -> dict[str, str]:
    return {"Authorization": "Bearer " + member_link_token(LINK_KEY, tenant, member, epoch)}


def test_token_endpoint_issues_tokens_the_gate_accepts(fleet: Fleet) -> None:
    client = TestClient(fleet.app())
    r = client.post("/member-qr/t1/m1/token", headers=bearer())
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert len(body["token"]) == TOKEN_CHARS and body["svg"].lstrip().startswith("<svg")
    assert body["first_name"] == "Ana" and 1 <= body["refresh_s"] <= 30
    token = verify_token(body["token"], fleet.key.public_key(), NOW)
    assert token.credential_id == CRED.credential_id
    # 30 s later the page gets a different token (a new time step)
    fleet.now += 30
    assert client.post("/member-qr/t1/m1/token", headers=bearer()).json()["token"] \
        != body["token"]


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer short"}, {"Authorization": "Bearer " + "A" * 22},
    bearer("t1", "m2"), bearer("t2", "m1"),
])
def test_wrong_links_all_look_alike(fleet: Fleet, headers: dict[str, str]) -> None:
    r = TestClient(fleet.app()).post("/member-qr/t1/m1/token", headers=headers)
    assert r.status_code == 404 and "token" not in r.text


def test_unknown_member_revoked_link_and_blocked_credential(fleet: Fleet) -> None:
    client = TestClient(fleet.app())
    assert client.post("/member-qr/t1/nobody/token", headers=bearer("t1", "nobody")) \
        .status_code == 404
    fleet.creds[("t1", "m1")] = MemberQrCredential(CRED.credential_id, CRED.valid_from,
                                                   CRED.valid_to, link_epoch=1)
    assert client.post("/member-qr/t1/m1/token", headers=bearer()).status_code == 404
    assert client.post("/member-qr/t1/m1/token", headers=bearer(epoch=1)).status_code == 200
    fleet.creds[("t1", "m1")] = MemberQrCredential(CRED.credential_id, CRED.valid_from,
                                                   CRED.valid_to, blocked=True)
    assert client.post("/member-qr/t1/m1/token", headers=bearer()).status_code == 403


def test_page_holds_no_secret_and_is_locked_down(fleet: Fleet) -> None:
    r = TestClient(fleet.app()).get("/member-qr/t1/m1")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'nonce-" in csp
    assert r.headers["referrer-policy"] == "no-referrer"
    assert member_link_token(LINK_KEY, "t1", "m1") not in r.text
    link = member_link("https://bridge.example/", LINK_KEY, "t1", "m1")
    assert link.startswith("https://bridge.example/member-qr/t1/m1#k=")


@pytest.fixture
def served(fleet: Fleet) -> Iterator[str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(fleet.app(), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_phone_page_in_chromium_shows_a_scannable_token(fleet: Fleet, served: str) -> None:
    pytest.importorskip("pyzbar.pyzbar")
    from PIL import Image
    from pyzbar.pyzbar import decode

    from tests.browser import chromium

    fleet.now = time.time()
    fleet.creds[("t1", "m1")] = MemberQrCredential(CRED.credential_id, int(fleet.now) - 10,
                                                   int(fleet.now) + 3600, first_name="Ana")
    link = member_link(served, LINK_KEY, "t1", "m1")
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 420, "height": 800})
        errors: list[str] = []
        # a script error, or the CSP blocking our own script or style (favicon 404s aside)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text)
                if "Content Security Policy" in m.text else None)
        page.goto(link)
        page.wait_for_selector("#qr svg", timeout=10_000)
        assert page.inner_text("#hello") == "Ana"
        png = page.locator("#qr").screenshot()
        bad = browser.new_page()
        bad.goto(link.replace("#k=", "#k=X"))
        bad.wait_for_function("document.getElementById('state').textContent.includes('ni')",
                              timeout=10_000)
        assert "ni veljavna" in bad.inner_text("#state")
    assert not errors, errors  # the CSP let our own script and style run
    codes = decode(Image.open(io.BytesIO(png)))
    assert len(codes) == 1
    token = verify_token(codes[0].data.decode(), fleet.key.public_key(), int(time.time()))
    assert token.credential_id == CRED.credential_id
