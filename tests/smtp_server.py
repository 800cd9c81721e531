"""A real SMTP server for the tests (aiosmtpd on a free loopback port) that keeps what
it received as ``email.message.EmailMessage`` objects.

Tests reach it through the ``smtp_server`` fixture (imported by tests/conftest.py):
``smtp_server.url("noreply@example.si")`` is the bridge's ``--mail-url``;
``smtp_server.wait_for(n)`` waits until n messages arrived. ``refuse_next`` makes the
server answer the next RCPT with a code of the test's choice (4xx deferral, 5xx refusal).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Collector:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse_next: str | None = None
        self.arrived = threading.Condition()

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if self.refuse_next is not None:
            answer, self.refuse_next = self.refuse_next, None
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        msg = message_from_bytes(content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        with self.arrived:
            self.messages.append(msg)
            self.arrived.notify_all()
        return "250 Message accepted"


class SmtpServer:
    def __init__(self, controller: Controller, collector: _Collector) -> None:
        self.controller = controller
        self.collector = collector
        self.port: int = controller.port

    @property
    def messages(self) -> list[EmailMessage]:
        return list(self.collector.messages)

    def url(self, sender: str = "noreply@edge.test") -> str:
        return f"smtp://127.0.0.1:{self.port}?from={sender}"

    def refuse_next(self, reply: str) -> None:
        """The next RCPT gets ``reply`` (e.g. ``"550 no such user"``)."""
        self.collector.refuse_next = reply

    def wait_for(self, count: int, timeout_s: float = 30.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout_s
        with self.collector.arrived:
            while len(self.collector.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.collector.messages)} of {count} e-mails "
                                         f"arrived within {timeout_s} s")
                self.collector.arrived.wait(left)
            return list(self.collector.messages)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    collector = _Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield SmtpServer(controller, collector)
    finally:
        controller.stop()


def body_text(msg: EmailMessage) -> str:
    part: Any = msg.get_body(preferencelist=("plain",))
    return str(part.get_content()) if part is not None else ""
