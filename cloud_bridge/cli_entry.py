"""The ``cloud-bridge`` command's entry point: the commands of cloud_bridge/cli.py with the
bridge's errors mapped ONCE. A BridgeError (cloud_bridge/errors.py) that no command turned
into its own message ends the process with exit code 2 and the error on one line, never a
traceback; commands that print their own message and code keep doing so."""

from __future__ import annotations

import sys

from cloud_bridge.cli import app
from cloud_bridge.errors import BridgeError

EXIT_BRIDGE_ERROR = 2


def one_line(exc: BaseException) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def main() -> None:
    try:
        app()
    except BridgeError as exc:
        print(f"napaka: {one_line(exc) or type(exc).__name__}", file=sys.stderr)
        raise SystemExit(EXIT_BRIDGE_ERROR) from None
