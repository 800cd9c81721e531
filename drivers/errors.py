"""Errors raised by peripheral back-ends, worded for the technician at the device."""

from __future__ import annotations


class DriverError(Exception):
    """Base for everything a back-end raises."""


class UnknownBackend(DriverError):
    pass


class BackendUnavailable(DriverError):
    """The back-end exists but its library (optional extra) is not installed."""


class BadPeripheralUrl(DriverError):
    pass


class PeripheralOffline(DriverError):
    pass


class PrinterError(DriverError):
    pass


class KeySetFailed(DriverError):
    """Setting a reader's secure channel key did not work; the message says why.
    ``maybe_taken``: the reader may hold the new key nonetheless."""

    def __init__(self, message: str, maybe_taken: bool = False) -> None:
        super().__init__(message)
        self.maybe_taken = maybe_taken
