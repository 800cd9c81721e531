"""POS errors, all inside the agent's EdgeError hierarchy."""

from __future__ import annotations

from agent.errors import BadInput, ConfigError, EdgeError


class PosError(EdgeError):
    """Base of the POS feature's own errors."""


class JobRejected(BadInput):
    """A print job was refused before anything was numbered or printed.

    ``code`` is a stable machine-readable reason (e.g. ``totals_mismatch``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class IdempotencyConflict(JobRejected):
    """The idempotency key was used before for a different job."""

    def __init__(self, message: str) -> None:
        super().__init__("idempotency_conflict", message)


class UnknownReceipt(BadInput):
    pass


class CredentialError(ConfigError):
    """The taxpayer PKCS#12 cannot be used (wrong password, not RSA, no tax number)."""


class FursError(PosError):
    """Talking to FURS failed."""


class FursUnavailable(FursError):
    """FURS did not answer in time or answered in a way worth retrying (S100, 5xx)."""


class FursRejected(FursError):
    """FURS refused the message with an error code (S001..S008): retrying will not help."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"FURS {code}: {message}")
        self.code = code
        self.message = message
