"""How long a remote command stays valid (docs/protocol.md, "Command expiry").

Every command carries ``expires_at`` (UTC epoch milliseconds). The bridge sets it from
the command's class when it sends it; the device compares it with its own clock and
refuses a command that is past it (``"error": "expired"``) or that claims to stay valid
for longer than its class allows (a bridge bug or a device clock far behind: refused,
never capped, so a wrong clock shows up instead of widening the window silently).

Pure: shared by the bridge (sending) and the agent's command router (checking)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

CommandClass = Literal["physical", "printing", "other"]

# what moves something in the room, what puts paper out, everything else
_CLASS_OF: dict[str, CommandClass] = {
    "open": "physical",
    "print": "printing",
    "reprint": "printing",
    "refund": "printing",  # a refund receipt, like a sale's
    "print-record-card": "printing",
}

DEFAULT_LIFETIME_S: dict[CommandClass, int] = {"physical": 10, "printing": 600, "other": 60}
# the longest a device accepts, measured on its own clock from when it reads the command
MAX_LIFETIME_S: dict[CommandClass, int] = {"physical": 60, "printing": 3600, "other": 600}

EXPIRED = "expired"


def command_class(name: str) -> CommandClass:
    return _CLASS_OF.get(name, "other")


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class CommandLifetimes:
    """The bridge's setting: seconds a command of each class stays valid once sent."""

    physical_s: int = DEFAULT_LIFETIME_S["physical"]
    printing_s: int = DEFAULT_LIFETIME_S["printing"]
    other_s: int = DEFAULT_LIFETIME_S["other"]

    def __post_init__(self) -> None:
        for cls in ("physical", "printing", "other"):
            value = self.seconds(cls)
            if not 1 <= value <= MAX_LIFETIME_S[cls]:
                raise ValueError(f"{cls} command lifetime must be 1..{MAX_LIFETIME_S[cls]} s "
                                 f"(devices refuse longer ones), got {value}")

    def seconds(self, cls: CommandClass) -> int:
        return {"physical": self.physical_s, "printing": self.printing_s,
                "other": self.other_s}[cls]

    def expires_at_ms(self, name: str, now_ms: int | None = None) -> int:
        start = wall_ms() if now_ms is None else now_ms
        return start + self.seconds(command_class(name)) * 1000


def expiry_refusal(name: str, expires_at_ms: int, now_ms: int) -> str | None:
    """Why the device refuses the command by its own clock, or None to run it."""
    if now_ms >= expires_at_ms:
        return EXPIRED
    cls = command_class(name)
    ahead_s = (expires_at_ms - now_ms) / 1000
    if ahead_s > MAX_LIFETIME_S[cls]:
        return (f"expiry {ahead_s:.0f} s ahead is over the {MAX_LIFETIME_S[cls]} s a {cls} "
                "command may stay valid (check the clocks of the device and the bridge)")
    return None


def command_payload(request_id: str, args: dict[str, Any], expires_at_ms: int) -> bytes:
    """The request on ``…/cmd/{name}``: every sender on the bridge builds it here."""
    return json.dumps({"v": 1, "request_id": request_id, "expires_at": expires_at_ms,
                       "args": args}, ensure_ascii=False).encode()
