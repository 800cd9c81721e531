"""Errors of the wire contracts: data from outside that does not follow them.

Subclasses of ValueError, so code that treats any malformed value alike keeps working;
the agent's and the bridge's own error roots sit in their packages."""

from __future__ import annotations


class ContractError(ValueError):
    """Data does not follow a wire contract."""


class BadInput(ContractError):
    """Something from outside (a reader, a socket client, a batch) was malformed."""


class SignatureError(BadInput):
    """Signed data did not verify against the configured public key."""
