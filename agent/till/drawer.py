"""The cash drawer, opened through the receipt printer's drawer port (ESC p), as
python-escpos' ``cashdraw`` writes it."""

from __future__ import annotations

import uuid

from escpos.printer import Dummy

from drivers.protocols import Printer, PrintJob


def drawer_pulse(pin: int = 2) -> bytes:
    dummy = Dummy()
    dummy.cashdraw(pin)
    return bytes(dummy.output)


def open_drawer(printer: Printer, reason: str) -> None:
    """Raises the printer's DriverError/OSError when the printer is off."""
    printer.print_job(PrintJob(f"drawer-{uuid.uuid4().hex[:12]}", drawer_pulse(),
                               {"drawer": reason}))
