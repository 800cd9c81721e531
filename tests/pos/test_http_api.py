"""The POS endpoint on the local HTTP server: auth, idempotent retries, clear refusals,
and a 10 MB body refused without being read."""

from __future__ import annotations

import json
import logging
import select
import socket
import time
from typing import Any

import httpx
import pytest

from simulators.furs_endpoint import FursSimulator, SimPki

from .conftest import TOKEN, job

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(furs: FursSimulator, make_pos: Any) -> Any:
    pos = make_pos(furs.url)
    pos.runtime.start()
    pos.base = f"http://127.0.0.1:{pos.runtime.http_port}"
    return pos


def test_token_is_required(api: Any) -> None:
    assert httpx.post(f"{api.base}/pos/v1/receipts", json=job()).status_code == 401
    r = httpx.post(f"{api.base}/pos/v1/receipts", json=job(),
                   headers={"Authorization": "Bearer wrong-token-wrong-token"})
    assert r.status_code == 401 and api.last_number() == 0
    assert httpx.get(f"{api.base}/pos/v1/status").status_code == 401


def test_sale_retry_status_and_reprint(api: Any) -> None:
    r = httpx.post(f"{api.base}/pos/v1/receipts", json=job(), headers=AUTH)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["invoice_id"] == "P1-BLAG1-1" and body["printed"] and body["eor"]
    again = httpx.post(f"{api.base}/pos/v1/receipts", json=job(), headers=AUTH)
    assert again.status_code == 200 and again.json()["duplicate"]
    assert again.json()["zoi"] == body["zoi"] and len(api.printer.jobs) == 1
    got = httpx.get(f"{api.base}/pos/v1/receipts/P1-BLAG1-1", headers=AUTH).json()
    assert got["fiscal_state"] == "fiscalised"
    rep = httpx.post(f"{api.base}/pos/v1/receipts/P1-BLAG1-1/reprint", headers=AUTH)
    assert rep.status_code == 200 and rep.json()["copies"] == 1
    assert httpx.get(f"{api.base}/pos/v1/receipts/P1-BLAG1-9", headers=AUTH).status_code == 404
    status = httpx.get(f"{api.base}/pos/v1/status", headers=AUTH).json()
    assert status["last_number"] == 1 and status["queue_depth"] == 0


@pytest.mark.parametrize(("over", "code"), [
    ({"lines": [{"name": "x", "quantity": "-1", "unit_price": "1", "vat": "22"}]}, "invalid_job"),
    ({"lines": [{"name": "x", "quantity": "1", "unit_price": "1", "vat": "7"}]},
     "unknown_vat_rate"),
    ({"totals": {"total": "1.00"}}, "totals_mismatch"),
])
def test_bad_jobs_get_422_with_a_reason(api: Any, over: dict[str, Any], code: str) -> None:
    r = httpx.post(f"{api.base}/pos/v1/receipts", json=job(**over), headers=AUTH)
    assert r.status_code == 422 and r.json()["error"] == code and r.json()["message"]
    assert api.printer.jobs == [] and api.last_number() == 0


def test_conflicting_reuse_of_a_key_is_409(api: Any) -> None:
    httpx.post(f"{api.base}/pos/v1/receipts", json=job(), headers=AUTH)
    r = httpx.post(f"{api.base}/pos/v1/receipts", json=job(note="other"), headers=AUTH)
    assert r.status_code == 409 and r.json()["error"] == "idempotency_conflict"


def test_not_json_is_400(api: Any) -> None:
    r = httpx.post(f"{api.base}/pos/v1/receipts", content=b"{nope", headers=AUTH)
    assert r.status_code == 400


def _read_status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ")[1])


def test_ten_megabytes_declared_is_refused_before_reading(api: Any) -> None:
    with socket.create_connection(("127.0.0.1", api.runtime.http_port), timeout=5) as sock:
        sock.sendall(b"POST /pos/v1/receipts HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 10485760\r\n\r\n{")
        # only 1 byte of the 10 MB was sent, and the answer is already there
        assert _read_status(sock) == 413
    assert api.last_number() == 0


def test_ten_megabytes_chunked_is_cut_off_at_the_limit(api: Any) -> None:
    chunk = b"x" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", api.runtime.http_port), timeout=5) as sock:
        sock.sendall(b"POST /pos/v1/receipts HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        status = None
        while sent < 10 * 1024 * 1024:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                status = _read_status(sock)
                break
            try:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            except OSError:
                break  # the server closed the connection
            sent += len(chunk)
            time.sleep(0.001)
        if status is None:
            status = _read_status(sock)
    assert status == 413
    assert sent < 10 * 1024 * 1024
    assert api.last_number() == 0


def test_secrets_never_reach_the_log(furs: FursSimulator, make_pos: Any, furs_pki: SimPki,
                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pos = make_pos(furs.url)
    furs.set_mode("down")
    pos.service.submit(job("log-0001"))
    furs.set_mode("error", error_code="S003")
    pos.service.submit(job("log-0002"))
    text = caplog.text + json.dumps([e.data for e in pos.outbox.pending(limit=100)])
    assert furs_pki.password().decode() not in text
    assert "PRIVATE KEY" not in text and TOKEN not in text
    assert "87654321" not in json.dumps([e.data for e in pos.outbox.pending(limit=100)])


_CODE = "ET1" + "A" * 167  # the form of a bridge-signed code (its signature is not checked)


@pytest.mark.parametrize(("tickets", "field"), [
    ([{"code": "ET1" + "a" * 167, "label": "Vstopnica"}], "tickets.0.code"),  # not base32
    ([{"code": "ET1" + "A" * 100, "label": "Vstopnica"}], "tickets.0.code"),  # length
    ([{"code": "ET2" + "A" * 167, "label": "Vstopnica"}], "tickets.0.code"),  # not ET1
    ([{"code": 170, "label": "Vstopnica"}], "tickets.0.code"),
    ([{"code": _CODE, "label": ""}], "tickets.0.label"),
    ([{"code": _CODE, "label": "x", "note": "y"}], "tickets.0.note"),
    ([{"code": _CODE, "label": "x"}] * 6, "tickets"),  # at most 5 on one receipt
])
def test_a_job_with_a_malformed_ticket_is_refused_saying_which(
        api: Any, caplog: pytest.LogCaptureFixture, tickets: list[dict[str, Any]],
        field: str) -> None:
    caplog.set_level(logging.DEBUG)
    r = httpx.post(f"{api.base}/pos/v1/receipts", json=job(tickets=tickets), headers=AUTH)
    assert r.status_code == 422 and r.json()["error"] == "invalid_job"
    message = r.json()["message"]
    assert message.startswith(f"{field}: ")
    code = tickets[0]["code"]
    if field == "tickets.0.code":
        assert "ticket code" in message and (not isinstance(code, str) or code not in message)
    if isinstance(code, str):
        assert code not in caplog.text  # never in a log either
    assert api.printer.jobs == [] and api.last_number() == 0 and api.events("pos.receipt") == []
