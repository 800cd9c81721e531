"""The till's ticket issuer key and the tenant's delegation for it (issue 22 part 6):
made on the device with mode 0600, the delegation line from ``cloud-bridge till
delegate`` taken only when it verifies for this key, this site and the tenant key; an
expired, forged or malformed one refused with the reason; the printed code verified as
a gate of the site verifies it."""

from __future__ import annotations

import os
import stat
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from agent.errors import ConfigError
from agent.till.ticket_issuer import KEY_FILE, TicketIssuer, TicketsUnavailable
from cloud_bridge.catalogue.delegation import make_delegation
from cloud_bridge.cli import app
from cloud_bridge.tenant_keys import TenantKeyStore, create_tenant
from contracts.ticket_delegation import decode_delegation, encode_delegation
from contracts.ticket_token import TicketKind, delegate_issuer, public_bytes, verify_ticket
from simulators.furs_endpoint import FursSimulator

DAY = 86_400


@pytest.fixture
def keys(tmp_path: Path) -> TenantKeyStore:
    create_tenant(tmp_path / "keys", "t1")
    return TenantKeyStore(tmp_path / "keys")


def _issuer(tmp_path: Path, keys: TenantKeyStore, site: str = "s1") -> TicketIssuer:
    return TicketIssuer(tmp_path / "data", public_bytes(keys.get("t1").public_key), site)


def test_the_key_is_made_once_and_kept_private(tmp_path: Path, keys: TenantKeyStore) -> None:
    first = _issuer(tmp_path, keys)
    path = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _issuer(tmp_path, keys).public_key == first.public_key  # not made again
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        _issuer(tmp_path, keys)


def test_delegations_are_checked_before_they_are_kept(tmp_path: Path,
                                                      keys: TenantKeyStore) -> None:
    issuer = _issuer(tmp_path, keys)
    now = int(time.time())
    key_hex = issuer.public_key.hex()
    with pytest.raises(TicketsUnavailable) as bad:
        issuer.install("ETD1NOTBASE32!", now)
    assert bad.value.problem == "delegation_malformed"
    # signed by another tenant's key: does not verify with this tenant's
    stranger = delegate_issuer(Ed25519PrivateKey.generate(), issuer.public_key, "s1",
                               now + DAY)
    with pytest.raises(TicketsUnavailable) as forged:
        issuer.install(encode_delegation(stranger), now)
    assert forged.value.problem == "delegation_invalid"
    expired = make_delegation(keys, "t1", "s1", key_hex, 1, now - 2 * DAY)
    with pytest.raises(TicketsUnavailable) as old:
        issuer.install(expired, now)
    assert old.value.problem == "delegation_expired"
    assert issuer.delegation is None and not issuer.delegation_path.exists()
    with pytest.raises(TicketsUnavailable) as none:
        issuer.check_ready(now)
    assert none.value.problem == "no_delegation"

    good = make_delegation(keys, "t1", "s1", key_hex, 30, now)
    assert decode_delegation(good).valid_to == now + 30 * DAY
    issuer.install(good, now)
    # kept across a restart
    again = _issuer(tmp_path, keys)
    assert again.status(now)["problem"] is None
    issued = again.issue(kind=TicketKind.ENTRY_VOUCHER, ticket_id=str(uuid.uuid4()),
                         valid_from=now, valid_to=now + 10 * DAY, entries=10, value_cents=0)
    token = verify_ticket(issued.code, keys.get("t1").public_key, now + DAY, "s1")
    assert token.entries == 10 and token.issuer == issued.issuer
    # once the delegation has run out, the till stops issuing
    assert again.status(now + 31 * DAY)["problem"] == "delegation_expired"
    with pytest.raises(TicketsUnavailable):
        again.issue(kind=TicketKind.DAY_TICKET, ticket_id=str(uuid.uuid4()),
                    valid_from=now + 31 * DAY, valid_to=now + 32 * DAY, entries=1,
                    value_cents=0)


def test_the_bridge_command_prints_the_delegation(tmp_path: Path,
                                                  keys: TenantKeyStore) -> None:
    issuer = _issuer(tmp_path, keys)
    runner = CliRunner()
    result = runner.invoke(app, ["till", "delegate", "t1", "--site", "s1", "--issuer-key",
                                 issuer.public_key.hex(), "--days", "10",
                                 "--keys-dir", str(tmp_path / "keys")])
    assert result.exit_code == 0, result.output
    issuer.install(result.output.strip(), int(time.time()))
    bad = runner.invoke(app, ["till", "delegate", "t1", "--site", "s1", "--issuer-key",
                              "abc", "--keys-dir", str(tmp_path / "keys")])
    assert bad.exit_code == 2 and "64 hexadecimal digits" in bad.output
    missing = runner.invoke(app, ["till", "delegate", "t9", "--site", "s1", "--issuer-key",
                                  issuer.public_key.hex(), "--keys-dir",
                                  str(tmp_path / "keys")])
    assert missing.exit_code == 2 and "has no keys" in missing.output


def test_a_receipt_is_not_stored_without_its_tickets(make_pos: Any, furs: FursSimulator
                                                     ) -> None:
    """If issuing fails inside the numbering transaction, nothing of the sale remains:
    no number, no receipt, no event; the same key then sells normally."""
    from tests.pos.conftest import job

    pos = make_pos(furs.url)

    def failing(conn: Any, invoice_id: str, now: Any) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS probe (x)")
        conn.execute("INSERT INTO probe VALUES (1)")
        raise TicketsUnavailable("delegation_expired", "ran out between check and sale")

    with pytest.raises(TicketsUnavailable):
        pos.service.submit(job("tix-atomic-1"), failing)
    assert pos.last_number() == 0 and pos.events("pos.receipt") == []
    assert pos.store.conn.execute(
        "SELECT COUNT(*) FROM sqlite_master WHERE name = 'probe'").fetchone()[0] == 0
    assert pos.service.submit(job("tix-atomic-1")).invoice_id == "P1-BLAG1-1"
