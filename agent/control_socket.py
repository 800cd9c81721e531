"""The agent's local control socket (Unix, mode 0600): JSON lines, one request per line.

Technician tools (``edge-sim``) talk to a running agent through it. Every request is
validated; a malformed one gets {"ok": false, "error": …} and the agent carries on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import socketserver
import threading
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.daemon_ports import ControlSubject
from agent.errors import BadInput, EdgeError
from agent.store.membership import SyntheticMember, bulk_insert, synthetic_changes
from drivers.errors import DriverError
from drivers.protocols import InjectableReader

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 32 * 1024 * 1024


class _Handler(socketserver.StreamRequestHandler):
    server: ControlServer

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(MAX_REQUEST_BYTES + 1)
            if not line:
                return
            if len(line) > MAX_REQUEST_BYTES:
                self._send({"ok": False, "error": "request too large"})
                return
            try:
                request = json.loads(line)
                if not isinstance(request, dict) or not isinstance(request.get("op"), str):
                    raise BadInput("request must be a JSON object with an 'op'")
                op = request["op"]
                if op == "watch":
                    self._watch()
                    return
                result = self.server.dispatch(op, request)
                self._send({"ok": True, **result})
            except (json.JSONDecodeError, UnicodeDecodeError):
                self._send({"ok": False, "error": "request is not JSON"})
            except ValidationError as exc:
                self._send({"ok": False, "error": f"invalid request: {exc.errors()[0]['msg']}"})
            except (EdgeError, DriverError, ValueError, KeyError, TypeError) as exc:
                self._send({"ok": False, "error": str(exc)})

    def _send(self, payload: dict[str, Any]) -> None:
        self.wfile.write(json.dumps(payload, ensure_ascii=False).encode() + b"\n")
        self.wfile.flush()

    def _watch(self) -> None:
        feed = self.server.daemon_ref.feed
        q = feed.subscribe()
        self._send({"ok": True, "watching": True})
        try:
            while not self.server.closing.is_set():
                try:
                    item = q.get(timeout=0.5)
                except queue.Empty:
                    continue
                self._send(item)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            feed.unsubscribe(q)


class ControlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, daemon: ControlSubject) -> None:
        self.path = path
        self.daemon_ref = daemon
        self.closing = threading.Event()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()  # left over from a crash; we hold the store, so no other agent runs
        old_umask = os.umask(0o177)
        try:
            super().__init__(str(path), _Handler)
        finally:
            os.umask(old_umask)
        self._thread = threading.Thread(target=self.serve_forever, name="control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.closing.set()
        self.shutdown()
        self.server_close()
        self.path.unlink(missing_ok=True)

    def dispatch(self, op: str, request: dict[str, Any]) -> dict[str, Any]:
        d = self.daemon_ref
        if op == "status":
            return d.status()
        if op == "present":
            reader_id = str(request["reader"])
            kind = request.get("kind", "uid")
            if kind not in ("uid", "qr"):
                raise BadInput("kind must be 'uid' or 'qr'")
            value = request["value"]
            if not isinstance(value, str):
                raise BadInput("value must be a string")
            reader = d.readers.get(reader_id)
            if reader is None:
                raise BadInput(f"no reader '{reader_id}' (known: {', '.join(sorted(d.readers))})")
            if not isinstance(reader, InjectableReader):
                url = getattr(reader, "url", "")
                raise BadInput(f"reader '{reader_id}' ({url}) is real hardware and does "
                               "not accept simulated reads; add a sim: reader")
            outcome = reader.inject(kind, value)
            if hasattr(outcome, "as_dict"):  # a time-clock punch, not a gate decision
                punch: dict[str, Any] = outcome.as_dict()
                return punch
            return {
                "granted": outcome.granted,
                "reason": outcome.decision.reason.value,
                "message": outcome.decision.message,
                "repeat": outcome.repeat,
                "seq": outcome.event.seq if outcome.event else None,
                "entries_left": outcome.decision.entries_left,
            }
        if op == "members.load":
            members = [SyntheticMember.model_validate(m) for m in request["members"]]
            rows = synthetic_changes(d.config.hmac_key(), members)
            with d.store.transaction() as conn:
                bulk_insert(conn, *rows)
            d.access.forget_recent()
            return {"loaded": len(members)}
        if op == "members.count":
            n = d.store.conn.execute("SELECT COUNT(*) FROM members").fetchone()[0]
            c = d.store.conn.execute("SELECT COUNT(*) FROM credentials").fetchone()[0]
            return {"members": n, "credentials": c}
        if op == "receipts":
            if d.pos is None:
                raise BadInput("this agent has no [pos] table: it prints no receipts")
            limit = request.get("limit", 50)
            if not isinstance(limit, int) or not 1 <= limit <= 10_000:
                raise BadInput("limit must be 1..10000")
            service = d.pos.service
            return {"summary": service.summary(),
                    "receipts": [dataclasses.asdict(r)
                                 for r in service.receipts(limit=limit, newest_first=True)]}
        raise BadInput(f"unknown op '{op}' (status, present, watch, members.load, members.count, "
                       "receipts)")
