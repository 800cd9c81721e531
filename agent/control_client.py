"""Client side of the agent's control socket, for the agent's own CLI (doctor, outbox
handover), the technician CLIs and tests."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.errors import EdgeError


class AgentUnreachable(EdgeError):
    """No agent answers on the control socket (the CLIs exit with 3)."""


class ControlClient:
    def __init__(self, path: str | Path, timeout: float = 30.0) -> None:
        self.path = str(path)
        self.timeout = timeout

    def _connect(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            s.close()
            raise AgentUnreachable(
                f"no agent is listening on {self.path} (is `edge-agent run` started with this "
                "config?)"
            ) from exc
        return s

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        with self._connect() as s:
            s.sendall(json.dumps({"op": op, **fields}).encode() + b"\n")
            with s.makefile("rb") as f:
                line = f.readline()
        if not line:
            raise AgentUnreachable("the agent closed the connection without answering")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def watch(self) -> Iterator[dict[str, Any]]:
        s = self._connect()
        s.settimeout(None)
        try:
            s.sendall(b'{"op": "watch"}\n')
            with s.makefile("rb") as f:
                for line in f:
                    yield json.loads(line)
        finally:
            s.close()
