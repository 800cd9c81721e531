"""The till's ticket issuer: its own Ed25519 key and the tenant's delegation for it.

The key is made on the device the first time the till starts (``till_issuer.key`` in the
data dir, PKCS#8 PEM, mode 0600 like every key file: agent/key_files.py) and never leaves
it; its public key is shown at ``GET /till/api/tickets/issuer``. A technician has the
bridge sign a delegation for it (``cloud-bridge till delegate``, bound to this device's
site, with an end date) and installs the text with ``PUT /till/api/tickets/delegation``
(``till_issuer_delegation`` in the data dir). The delegation authenticates itself: it is
accepted only when a probe ticket signed with it verifies against the tenant public key
the device already has, for this site, as a gate of the site will check it. Without a
valid delegation the till refuses to sell tickets (the rest of the sale works).
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from agent.errors import ConfigError
from agent.key_files import check_key_file
from agent.remote_config import write_atomic
from contracts.ticket_delegation import decode_delegation
from contracts.ticket_token import (
    IssuerDelegation,
    TicketKind,
    TicketRejected,
    issue_ticket,
    public_bytes,
    verify_ticket,
)

KEY_FILE = "till_issuer.key"
DELEGATION_FILE = "till_issuer_delegation"


class TicketsUnavailable(Exception):
    """The till may not issue tickets now; ``problem`` is a code the page translates."""

    def __init__(self, problem: str, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem  # no_tenant_key | no_delegation | delegation_expired | ...
        self.detail = detail


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The issuer key in ``path``, made (mode 0600, never overwritten) if there is none."""
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # made meanwhile by another start: read that one
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
                out.flush()
                os.fsync(out.fileno())
    check_key_file(path, f"till ticket issuer key {path}")
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the till's ticket issuer key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: the till's ticket issuer key is not an Ed25519 key")
    return key


@dataclass(frozen=True, slots=True)
class IssuedCode:
    code: str
    issuer: str  # hex SHA-256 of the issuer public key, as verify_ticket reports it


class TicketIssuer:
    def __init__(self, data_dir: Path, tenant_key: bytes | None, site: str) -> None:
        self.key = load_or_create_key(data_dir / KEY_FILE)
        self.public_key = public_bytes(self.key.public_key())
        self.tenant_key = (None if tenant_key is None
                           else Ed25519PublicKey.from_public_bytes(tenant_key))
        self.site = site
        self.delegation_path = data_dir / DELEGATION_FILE
        self.delegation: IssuerDelegation | None = None
        if self.delegation_path.exists():
            try:
                self.delegation = self._checked(self.delegation_path.read_text("ascii"),
                                                int(time.time()), allow_expired=True)
            except (OSError, UnicodeError, TicketsUnavailable):
                self.delegation = None  # reported by status() and at the first sale

    def install(self, text: str, now_s: int) -> IssuerDelegation:
        """Check and keep a delegation from the bridge; raises TicketsUnavailable."""
        delegation = self._checked(text, now_s, allow_expired=False)
        write_atomic(self.delegation_path, text.strip().encode("ascii") + b"\n")
        self.delegation = delegation
        return delegation

    def _checked(self, text: str, now_s: int, *, allow_expired: bool) -> IssuerDelegation:
        if self.tenant_key is None:
            raise TicketsUnavailable("no_tenant_key", "this device has no tenant public key "
                                     "(keys.tenant_public_key)")
        try:
            delegation = decode_delegation(text)
        except ValueError as exc:
            raise TicketsUnavailable("delegation_malformed", str(exc)) from None
        if delegation.issuer_public_key != self.public_key:
            raise TicketsUnavailable("delegation_other_key", "the delegation is for another "
                                     "till's issuer key")
        if not allow_expired and delegation.valid_to <= now_s:
            raise TicketsUnavailable("delegation_expired", "the delegation has expired")
        at = min(now_s, delegation.valid_to - 1)
        self._probe(delegation, at)
        return delegation

    def _probe(self, delegation: IssuerDelegation, at: int) -> None:
        """Sign a ticket with the delegation and verify it as a gate of the site would."""
        assert self.tenant_key is not None
        try:
            code = issue_ticket(self.key, kind=TicketKind.DAY_TICKET,
                                ticket_id=str(uuid.uuid4()), valid_from=at, valid_to=at + 1,
                                entries=1, site_id=self.site, delegation=delegation)
            verify_ticket(code, self.tenant_key, at, self.site)
        except ValueError:
            raise TicketsUnavailable("delegation_other_site", "the delegation is for "
                                     "another site") from None
        except TicketRejected as exc:
            raise TicketsUnavailable("delegation_invalid", f"the delegation does not "
                                     f"verify with the tenant key: {exc}") from None

    def check_ready(self, now_s: int) -> None:
        """Raise TicketsUnavailable unless tickets can be issued now."""
        problem = self.status(now_s)["problem"]
        if problem == "no_tenant_key":
            raise TicketsUnavailable("no_tenant_key", "this device has no tenant public key")
        if problem == "no_delegation":
            raise TicketsUnavailable("no_delegation", "the till has no delegation from the "
                                     "bridge to issue tickets")
        if problem == "delegation_expired":
            raise TicketsUnavailable("delegation_expired", "the till's delegation to issue "
                                     "tickets has expired")

    def issue(self, *, kind: TicketKind, ticket_id: str, valid_from: int, valid_to: int,
              entries: int, value_cents: int) -> IssuedCode:
        """A ticket code for this site, verified before it is returned; raises
        TicketsUnavailable when the till may not issue it."""
        delegation = self.delegation
        if self.tenant_key is None:
            raise TicketsUnavailable("no_tenant_key", "this device has no tenant public key")
        if delegation is None:
            raise TicketsUnavailable("no_delegation", "the till has no delegation from the "
                                     "bridge to issue tickets")
        if valid_from > delegation.valid_to:
            raise TicketsUnavailable("delegation_expired", "the till's delegation to issue "
                                     "tickets has expired")
        code = issue_ticket(self.key, kind=kind, ticket_id=ticket_id, valid_from=valid_from,
                            valid_to=valid_to, entries=entries, value_cents=value_cents,
                            site_id=self.site, delegation=delegation)
        try:
            token = verify_ticket(code, self.tenant_key, valid_from, self.site)
        except TicketRejected as exc:
            raise TicketsUnavailable("delegation_invalid", str(exc)) from None
        return IssuedCode(code, token.issuer)

    def status(self, now_s: int) -> dict[str, object]:
        d = self.delegation
        problem = ("no_tenant_key" if self.tenant_key is None else "no_delegation" if d is None
                   else "delegation_expired" if d.valid_to <= now_s else None)
        return {"issuer_public_key": self.public_key.hex(), "site": self.site,
                "delegation_valid_to": None if d is None else d.valid_to, "problem": problem}
