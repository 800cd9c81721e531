"""The notification outbox against a real SMTP server (aiosmtpd), SQLite and PostgreSQL:
delivered once, deduplicated, deferred while the server is down and sent when it is
back, refused for good on a 5xx with the reason kept, SMS written by the file provider,
and an HTTP provider's answers mapped to retry or refusal."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import Engine

from cloud_bridge.db_schema import make_engine
from cloud_bridge.errors import Invalid
from cloud_bridge.notifications import (
    Notice,
    Notifier,
    mailer_from_url,
    sms_from_url,
)
from cloud_bridge.notifications.outbox import rows_for
from tests.bridge.conftest import pg_url  # noqa: F401
from tests.smtp_server import SmtpServer, body_text


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = (f"sqlite:///{tmp_path / 'n.sqlite3'}" if request.param == "sqlite"
           else str(request.getfixturevalue("pg_url")))
    eng = make_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture
def tid() -> str:
    """A tenant of this test's own: the PostgreSQL database is shared by the session."""
    return f"t{uuid.uuid4().hex[:10]}"


class Clock:
    def __init__(self) -> None:
        self.ms = 1_800_000_000_000

    def __call__(self) -> int:
        return self.ms


def notice(key: str, tenant: str, *, to: str = "vodja@primer.si") -> Notice:
    return Notice(tenant=tenant, kind="test_alert", channel="email", recipient=to,
                  subject="Opozorilo: manjka odhod", body="Ana Novak ni zabeležila odhoda.",
                  dedup_key=key)


def test_delivered_once_with_slovenian_text(tid: str, engine: Engine,
                                           smtp_server: SmtpServer) -> None:
    notifier = Notifier(engine, mailer_from_url(smtp_server.url()), None)
    assert notifier.enqueue_now(notice("a1", tid))
    assert not notifier.enqueue_now(notice("a1", tid))  # the same alert found again
    assert notifier.deliver_due() == 1
    assert notifier.deliver_due() == 0
    [msg] = smtp_server.wait_for(1)
    assert msg["To"] == "vodja@primer.si"
    assert msg["Subject"] == "Opozorilo: manjka odhod"
    assert "zabeležila" in body_text(msg)
    [row] = rows_for(engine, tid)
    assert row.state == "sent" and row.attempts == 1


def test_server_down_then_back(tid: str, engine: Engine, smtp_server: SmtpServer) -> None:
    clock = Clock()
    down = mailer_from_url(f"smtp://127.0.0.1:{_closed_port()}?from=a@b.si")
    notifier = Notifier(engine, down, None, clock_ms=clock)
    notifier.enqueue_now(notice("b1", tid))
    assert notifier.deliver_due() == 0
    [row] = rows_for(engine, tid)
    assert row.state == "pending" and row.attempts == 1 and "unreachable" in (row.last_error or "")
    assert notifier.deliver_due() == 0  # backing off: not due yet
    notifier.mailer = mailer_from_url(smtp_server.url())
    clock.ms += 31_000
    assert notifier.deliver_due() == 1
    assert len(smtp_server.wait_for(1)) == 1


def test_refused_address_kept_aside(tid: str, engine: Engine, smtp_server: SmtpServer) -> None:
    notifier = Notifier(engine, mailer_from_url(smtp_server.url()), None)
    smtp_server.refuse_next("550 5.1.1 no such mailbox")
    notifier.enqueue_now(notice("c1", tid, to="nobody@primer.si"))
    notifier.enqueue_now(notice("c2", tid))
    assert notifier.deliver_due() == 1  # the second one still goes
    rows = {r.recipient: r for r in rows_for(engine, tid)}
    assert rows["nobody@primer.si"].state == "refused"
    assert "550" in (rows["nobody@primer.si"].refused or "")
    assert rows["vodja@primer.si"].state == "sent"


def test_deferral_4xx_retried(tid: str, engine: Engine, smtp_server: SmtpServer) -> None:
    clock = Clock()
    notifier = Notifier(engine, mailer_from_url(smtp_server.url()), None, clock_ms=clock)
    smtp_server.refuse_next("451 4.3.0 try again later")
    notifier.enqueue_now(notice("d1", tid))
    assert notifier.deliver_due() == 0
    clock.ms += 31_000
    assert notifier.deliver_due() == 1


def test_gives_up_after_max_attempts(tid: str, engine: Engine) -> None:
    clock = Clock()
    down = mailer_from_url(f"smtp://127.0.0.1:{_closed_port()}?from=a@b.si")
    notifier = Notifier(engine, down, None, clock_ms=clock, max_attempts=3)
    notifier.enqueue_now(notice("e1", tid))
    for _ in range(3):
        notifier.deliver_due()
        clock.ms += 3_600_001
    [row] = rows_for(engine, tid)
    assert row.state == "refused" and "gave up after 3 attempts" in (row.refused or "")


def test_tenants_apart_and_background_thread(tid: str, engine: Engine,
                                            smtp_server: SmtpServer) -> None:
    notifier = Notifier(engine, mailer_from_url(smtp_server.url()), None)
    notifier.start(interval_s=0.05)
    try:
        notifier.enqueue_now(notice("same", tid))
        notifier.enqueue_now(notice("same", tid + "b"))  # another tenant's own key
        assert len(smtp_server.wait_for(2)) == 2
    finally:
        notifier.stop()
    assert [r.tenant for r in rows_for(engine, tid + "b")] == [tid + "b"]


def test_sms_file_provider(tid: str, tmp_path: Path, engine: Engine) -> None:
    path = tmp_path / "sms.jsonl"
    notifier = Notifier(engine, None, sms_from_url(f"file://{path}"))
    notifier.enqueue_now(Notice(tenant=tid, kind="lesson", channel="sms",
                                recipient="+38640123456", subject="",
                                body="Vožnja jutri ob 8.00.", dedup_key="s1"))
    assert notifier.deliver_due() == 1
    [line] = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["text"] == "Vožnja jutri ob 8.00."


def test_no_mail_server_configured_waits(tid: str, engine: Engine) -> None:
    notifier = Notifier(engine, None, None)
    notifier.enqueue_now(notice("f1", tid))
    assert notifier.deliver_due() == 0
    [row] = rows_for(engine, tid)
    assert row.state == "pending" and "--mail-url" in (row.last_error or "")


class _Gateway(BaseHTTPRequestHandler):
    answers: ClassVar[list[int]] = []
    received: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Gateway.received.append(json.loads(self.rfile.read(length)))
        assert self.headers["Authorization"] == "Bearer sekret"
        status = _Gateway.answers.pop(0)
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_http_sms_provider_retry_and_refusal(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    eng = make_engine(f"sqlite:///{tmp_path / 'n.sqlite3'}")
    clock = Clock()
    try:
        _Gateway.answers[:] = [503, 200, 400]
        url = f"http://127.0.0.1:{server.server_port}/send?token=sekret"
        sms = sms_from_url(url.replace("http://", "https://", 1))
        object.__setattr__(sms, "url", url.split("?")[0])  # plain HTTP on loopback
        notifier = Notifier(eng, None, sms, clock_ms=clock)
        for key in ("h1", "h2"):
            notifier.enqueue_now(Notice(tenant="t1", kind="k", channel="sms",
                                        recipient="+38640111222", subject="", body="Živjo",
                                        dedup_key=key))
        assert notifier.deliver_due() == 1  # h1: 503, deferred; h2: 200, sent
        assert sorted(r.state for r in rows_for(eng, "t1")) == ["pending", "sent"]
        clock.ms += 31_000
        assert notifier.deliver_due() == 0  # the retried one now gets 400: refused
        assert sorted(r.state for r in rows_for(eng, "t1")) == ["refused", "sent"]
        assert all(m["text"] == "Živjo" for m in _Gateway.received)
    finally:
        server.shutdown()
        eng.dispose()


def test_bad_urls_and_notices_refused(tid: str) -> None:
    for url in ("http://x", "smtp://host:25", "smtp://:25?from=a@b"):
        with pytest.raises(Invalid):
            mailer_from_url(url)
    for url in ("ftp://x", "https://gw/send", "file://"):
        with pytest.raises(Invalid):
            sms_from_url(url)
    with pytest.raises(Invalid, match="@"):
        notice("x", tid, to="not-an-address")
    with pytest.raises(Invalid, match="480"):
        Notice(tenant="t", kind="k", channel="sms", recipient="+386", subject="",
               body="x" * 481, dedup_key="k")


def _closed_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
