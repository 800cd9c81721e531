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
