"""The daemon's handlers for the office's remote commands (docs/protocol.md, "Commands"):
open, reload, resend-state, print, reprint, refund, print-record-card.

The router (parsing, expiry, one result per request id) is sync/commands.py; these
handlers know the daemon, the POS and the record card, and refuse with the router's
:class:`~sync.commands.CommandRefused` carrying the agent's own error text."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from agent.errors import EdgeError
from contracts.messages import OpenArgs
from drivers.errors import DriverError
from drivers.protocols import Printer
from sync.commands import CommandRefused, CommandRouter, Handler

if TYPE_CHECKING:  # the POS and the record card import ESC/POS and web libraries: seconds
    # on a Pi, so only when a command needs them
    from agent.access.service import AccessService
    from agent.pos.pos_runtime import PosRuntime
    from agent.print_queue import PrintQueue


class CommandedDevice(Protocol):
    """What the command handlers use of the daemon."""

    @property
    def access(self) -> AccessService: ...

    @property
    def pos(self) -> PosRuntime | None: ...

    @property
    def printers(self) -> Mapping[str, Printer]: ...

    @property
    def print_queue(self) -> PrintQueue | None: ...

    def remote_open(self, gate_id: str, direction: str, request_id: str) -> int: ...

    def reload(self) -> dict[str, Any]: ...


def _refusing(handler: Handler) -> Handler:
    """The agent's and the drivers' errors become the router's refusal, text unchanged."""

    @functools.wraps(handler)
    def run(request_id: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            return handler(request_id, args)
        except (EdgeError, DriverError) as exc:
            raise CommandRefused(str(exc)) from exc

    return run


def daemon_commands(daemon: CommandedDevice, resend_state: Callable[[], None]) -> CommandRouter:
    router = CommandRouter(lambda: int(daemon.access.clock().timestamp() * 1000))

    def open_gate(request_id: str, args: dict[str, Any]) -> dict[str, Any]:
        parsed = OpenArgs.model_validate(args)
        seq = daemon.remote_open(parsed.gate, parsed.direction, request_id)
        return {"gate": parsed.gate, "direction": parsed.direction, "pulsed": True, "seq": seq}

    def reload(request_id: str, args: dict[str, Any]) -> dict[str, Any]:
        return daemon.reload()

    def state(request_id: str, args: dict[str, Any]) -> dict[str, Any]:
        resend_state()
        return {"sent": True}

    def pos_runtime() -> PosRuntime:
        if daemon.pos is None:
            raise ValueError("this device has no [pos] table: it does not print receipts")
        return daemon.pos

    def print_receipt(request_id: str, args: dict[str, Any]) -> dict[str, Any]:
        # the job carries its own idempotency key: a resent command never numbers twice
        return dataclasses.asdict(pos_runtime().service.submit(args))

    def reprint(request_id: str, args: dict[str, Any]) -> dict[str, Any]:
        invoice_id = args.get("invoice_id")
        if not isinstance(invoice_id, str) or not invoice_id:
            raise ValueError("reprint needs args.invoice_id, e.g. 'P1-BLAG1-42'")
        return dataclasses.asdict(pos_runtime().service.reprint(invoice_id))

    def refund(request_id: str, args: dict[str, Any]) -> dict[str, Any]:
        # E-SV: a credit note paid back at the till; lines of an earlier receipt of
        # this device (agent/pos/refund.py), its own idempotency key like a sale
        return dataclasses.asdict(pos_runtime().service.refund(args))

    def print_record_card(request_id: str, args: dict[str, Any]) -> dict[str, Any]:
        # E-SV: the office's "print record card"; through the durable print queue, so a
        # printer that is off prints it later and a redelivered command prints once
        from agent.record_card import handle_print_record_card

        return handle_print_record_card(args, daemon.printers, request_id=request_id,
                                        queue=daemon.print_queue)

    router.register("open", _refusing(open_gate))
    router.register("print-record-card", _refusing(print_record_card))
    router.register("print", _refusing(print_receipt))
    router.register("reprint", _refusing(reprint))
    router.register("refund", _refusing(refund))
    router.register("reload", _refusing(reload))
    router.register("resend-state", _refusing(state))
    return router
