"""The device side's errors as the command line shows them: one line on stderr and an
exit code, never a traceback. Used by ``edge-agent`` and ``edge-sim`` alike.

Three roots reach a command: the agent's :class:`~agent.errors.EdgeError`, the drivers'
:class:`~drivers.errors.DriverError` (drivers cannot import upward) and the wire
contracts' :class:`~contracts.errors.ContractError`. Each maps to an exit code here and
nowhere else; a command names only the words its line starts with.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from agent.control_client import AgentUnreachable
from agent.errors import DEVICE_ERRORS, EdgeError
from contracts.errors import ContractError
from drivers.errors import DriverError

EXIT_REFUSED = 2  # what was asked cannot work as given (config, data, peripheral)
EXIT_UNREACHABLE = 3  # no agent answers on the control socket

# first match wins: the more specific classes first; every class of DEVICE_ERRORS is here
EXIT_CODES: tuple[tuple[type[Exception], int], ...] = (
    (AgentUnreachable, EXIT_UNREACHABLE),
    (EdgeError, EXIT_REFUSED),
    (DriverError, EXIT_REFUSED),
    (ContractError, EXIT_REFUSED),
)

# soft_wrap: an error stays one line however narrow the terminal (journald, pipes);
# no emoji codes or highlighting: file names and key paths print as they are
err = Console(stderr=True, soft_wrap=True, emoji=False, highlight=False)

P = ParamSpec("P")
R = TypeVar("R")


def exit_code(exc: Exception) -> int:
    return next(code for cls, code in EXIT_CODES if isinstance(exc, cls))


def say_error(prefix: str, exc: BaseException | str) -> None:
    """One line on stderr: the prefix in red, then the message with its line breaks
    folded (never read as markup: key paths like readers[1] are printed as they are)."""
    text = escape(" ".join(str(exc).split()))
    err.print(f"[red]{escape(prefix)}[/red] {text}" if prefix else f"[red]{text}[/red]")


def refuses_device_errors(prefix: str = "") -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a CLI command: a device-side error ends it with one line starting with
    ``prefix`` and the exit code of :data:`EXIT_CODES`."""

    def decorate(command: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(command)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return command(*args, **kwargs)
            except DEVICE_ERRORS as exc:
                say_error(prefix, exc)
                raise typer.Exit(exit_code(exc)) from None

        return run

    return decorate
