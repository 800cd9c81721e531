"""The four peripheral roles, as small Protocols the core depends on.

Every back-end (simulator or hardware) implements one of these and is picked by the
URL scheme in the device config (see ``drivers.registry``). The core never imports a
back-end module directly.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

ReadKind = Literal["uid", "qr", "phone"]


@dataclass(frozen=True, slots=True)
class CardRead:
    """One thing a reader saw: a card UID (hex, upper case) or the text of a QR/barcode."""

    reader_id: str
    kind: ReadKind
    value: str
    # time.monotonic() when the reader saw it, for latency measurement
    seen_at: float
    # extra, back-end specific facts (e.g. NTAG 424 SUN parameters); never logged
    extra: tuple[tuple[str, str], ...] = ()


class HealthState(enum.StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class PeripheralHealth:
    state: HealthState
    detail: str = ""
    # counted reasons for dropped input, e.g. {"bad_parity": 3}
    dropped: tuple[tuple[str, int], ...] = ()

    @staticmethod
    def ok(detail: str = "") -> PeripheralHealth:
        return PeripheralHealth(HealthState.OK, detail)


# What the core does with a read; its return value is handed back to whoever injected
# the read (the simulator shows the decision), hardware back-ends ignore it.
ReadHandler = Callable[[CardRead], Any]


@runtime_checkable
class CardReader(Protocol):
    id: str

    def start(self, on_read: ReadHandler) -> None:
        """Begin delivering reads (from a thread of the back-end's own)."""

    def stop(self) -> None: ...

    def health(self) -> PeripheralHealth: ...


@runtime_checkable
class InjectableReader(Protocol):
    """A reader that accepts reads from outside (the simulator back-end)."""

    def inject(self, kind: ReadKind, value: str) -> Any: ...


class ReaderCondition(enum.StrEnum):
    """Something about a reader the office must know, beyond its health."""

    OFFLINE = "offline"  # the reader stopped answering (cable, power)
    TAMPER = "tamper"  # its tamper switch is open (housing off the wall)
    REFUSED = "refused"  # it was refused, e.g. no secure channel: never run in the clear


@dataclass(frozen=True, slots=True)
class ReaderAlert:
    """A reader condition that started (``active``) or ended. ``detail`` is for the
    technician and never holds a key or a card number."""

    reader_id: str
    condition: ReaderCondition
    active: bool
    detail: str = ""


AlertHandler = Callable[[ReaderAlert], None]


@runtime_checkable
class ReportsReaderAlerts(Protocol):
    """A reader back-end that knows about tamper, link loss or refusals (OSDP)."""

    def set_alert_handler(self, handler: AlertHandler) -> None: ...


@runtime_checkable
class ReaderFeedback(Protocol):
    """A reader with its own LED and buzzer: told the decision of each of its reads."""

    def feedback(self, granted: bool) -> None:
        """Show the decision (green and a short beep, or red and a long double beep).
        Must not block: the gate path calls it."""


Direction = Literal["in", "out"]


@dataclass(frozen=True, slots=True)
class GatePulse:
    gate_id: str
    direction: Direction
    pulse_ms: int


# Called by a gate back-end when it learns whether a person went through after a pulse
# (passage sensor wired) — False means the gate timed out with nobody passing.
PassageHandler = Callable[[GatePulse, bool], None]


@runtime_checkable
class Gate(Protocol):
    id: str

    def start(self) -> None: ...

    def open(self, direction: Direction, pulse_ms: int) -> None:
        """Release the gate once for one passage. Must not block for the pulse length."""

    def set_passage_handler(self, handler: PassageHandler) -> None:
        """Back-ends without passage feedback never call the handler."""

    def stop(self) -> None: ...

    def health(self) -> PeripheralHealth: ...


# Called with True when a fire-alarm (free-pass) input becomes active, False when it clears.
AlarmHandler = Callable[[bool], None]


@runtime_checkable
class HoldableGate(Protocol):
    """A gate that can be held open (fire alarm: every gate of the site opens)."""

    def hold_open(self, active: bool) -> None: ...


@runtime_checkable
class FireAlarmInput(Protocol):
    """A gate back-end with a fire-alarm input wired. The daemon, not the back-end, opens
    every gate of the site, so an alarm wired to one controller frees all of them."""

    def set_alarm_handler(self, handler: AlarmHandler) -> None: ...


class DisplayStyle(enum.StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class DisplayMessage:
    text: str
    style: DisplayStyle = DisplayStyle.INFO
    # seconds to keep it before going back to the idle screen
    hold_s: float = 3.0


@runtime_checkable
class Display(Protocol):
    id: str

    def start(self) -> None: ...

    def show(self, message: DisplayMessage) -> None: ...

    def stop(self) -> None: ...

    def health(self) -> PeripheralHealth: ...


@dataclass(frozen=True, slots=True)
class PrintJob:
    """Raw bytes for the printer, already rendered (e.g. ESC/POS) by the caller."""

    job_id: str
    payload: bytes
    meta: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Printer(Protocol):
    id: str

    def start(self) -> None: ...

    def print_job(self, job: PrintJob) -> None:
        """Send one job; raises drivers.errors.PrinterError when it could not be printed."""

    def stop(self) -> None: ...

    def health(self) -> PeripheralHealth: ...
