"""Remote commands the office sends to one device (docs/protocol.md, "Commands").

Each command has a request id and gets exactly one result; a malformed or unknown
command gets an error result and never reaches the daemon. Every command carries an
expiry, checked on this device's clock before anything runs: one past it is answered
``"error": "expired"`` (contracts/command_expiry.py).

The router is here; the handlers that know the daemon are the agent's
(agent/remote_commands.py), registered with :meth:`CommandRouter.register`. A handler
refuses with :class:`CommandRefused` (or ValueError): its text is the result's error."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from contracts import strict_json
from contracts.command_expiry import EXPIRED, expiry_refusal, wall_ms
from contracts.messages import MAX_COMMAND_BYTES, Command

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], dict[str, Any]]


class CommandRefused(Exception):
    """A command that cannot run here (no such peripheral, the daemon says no, ...);
    the message goes into the result as it is."""


class CommandRouter:
    def __init__(self, now_ms: Callable[[], int] = wall_ms) -> None:
        self._handlers: dict[str, Handler] = {}
        self._now_ms = now_ms  # the device's clock, the only one it has

    def register(self, name: str, handler: Handler) -> None:
        self._handlers[name] = handler

    @property
    def names(self) -> list[str]:
        return sorted(self._handlers)

    def handle(self, name: str, raw: bytes) -> dict[str, Any]:
        """Run one command; always returns the result message to publish."""
        request_id: str | None = None
        try:
            if len(raw) > MAX_COMMAND_BYTES:
                raise ValueError(f"command of {len(raw)} bytes is over {MAX_COMMAND_BYTES}")
            body = strict_json.loads(raw)
            if isinstance(body, dict) and isinstance(body.get("request_id"), str):
                request_id = body["request_id"][:64]
            command = Command.model_validate(body)
            now = self._now_ms()
            refusal = expiry_refusal(name, command.expires_at, now)
            if refusal == EXPIRED:
                log.warning("command %s %s expired %.1f s ago by this device's clock: not run",
                            name[:40], request_id, (now - command.expires_at) / 1000)
                return {"v": 1, "request_id": request_id, "name": name[:40], "ok": False,
                        "error": EXPIRED,
                        "result": {"expires_at": command.expires_at, "device_time": now}}
            if refusal is not None:
                raise ValueError(refusal)
            handler = self._handlers.get(name)
            if handler is None:
                raise ValueError(f"unknown command '{name[:40]}' (known: {', '.join(self.names)})")
            result = handler(command.request_id, command.args)
            return {"v": 1, "request_id": request_id, "name": name, "ok": True, "result": result}
        except strict_json.StrictJsonError as exc:
            error = "command is not JSON" if exc.syntax else f"command refused: {exc}"
        except ValidationError as exc:
            first = exc.errors()[0]
            error = f"invalid command: {'.'.join(map(str, first['loc']))}: {first['msg']}"
        except (CommandRefused, ValueError) as exc:
            error = str(exc)
        except Exception as exc:  # a command must never take the agent down
            log.exception("command %s failed", name[:40])
            error = f"internal error: {type(exc).__name__}"
        log.warning("command %s refused: %s", name[:40], error)
        return {"v": 1, "request_id": request_id, "name": name[:40], "ok": False, "error": error}

