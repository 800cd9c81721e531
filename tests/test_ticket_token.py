"""The printed ticket/voucher QR contract: who may sign it, for which site, until when."""

from __future__ import annotations

import base64
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.reasons import Reason
from contracts.ticket_token import (
    MAX_TOKEN_CHARS,
    TicketKind,
    TicketRejected,
    delegate_issuer,
    issue_ticket,
    looks_like_ticket,
    public_bytes,
    site_tag,
    verify_ticket,
)

NOW = 1_800_000_000
DAY = 86_400
TID = str(uuid.UUID(int=42))


@pytest.fixture
def tenant() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def till() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _till_ticket(tenant: Ed25519PrivateKey, till: Ed25519PrivateKey, site: str = "ljubljana",
                 delegation_to: int = NOW + 30 * DAY, valid_from: int = NOW) -> str:
    delegation = delegate_issuer(tenant, public_bytes(till.public_key()), site, delegation_to)
    return issue_ticket(till, kind=TicketKind.DAY_TICKET, ticket_id=TID, valid_from=valid_from,
                        valid_to=valid_from + DAY, entries=1, site_id=site,
                        delegation=delegation)


def test_a_bridge_ticket_verifies_at_any_site_with_what_it_grants(
        tenant: Ed25519PrivateKey) -> None:
    text = issue_ticket(tenant, kind=TicketKind.VALUE_VOUCHER, ticket_id=TID, valid_from=NOW,
                        valid_to=NOW + 365 * DAY, value_cents=5000)
    assert looks_like_ticket(text) and len(text) == 170
    assert text.isalnum() and text == text.upper()
    token = verify_ticket(text, tenant.public_key(), NOW + 10, "maribor")
    assert (token.kind, token.ticket_id, token.value_cents, token.entries, token.issuer) == (
        TicketKind.VALUE_VOUCHER, TID, 5000, 0, "tenant")


def test_a_till_ticket_verifies_at_its_site_only(tenant: Ed25519PrivateKey,
                                                 till: Ed25519PrivateKey) -> None:
    text = _till_ticket(tenant, till)
    assert len(text) == 330 and len(text) <= MAX_TOKEN_CHARS
    token = verify_ticket(text, tenant.public_key(), NOW + 60, "ljubljana")
    assert token.entries == 1 and token.site_tag == site_tag("ljubljana")
    assert token.issuer != "tenant"
    with pytest.raises(TicketRejected) as err:
        verify_ticket(text, tenant.public_key(), NOW + 60, "maribor")
    assert err.value.reason is Reason.WRONG_ZONE


def test_a_till_key_without_the_tenants_delegation_is_refused(
        tenant: Ed25519PrivateKey, till: Ed25519PrivateKey) -> None:
    rogue_tenant = Ed25519PrivateKey.generate()
    text = _till_ticket(rogue_tenant, till)
    with pytest.raises(TicketRejected) as err:
        verify_ticket(text, tenant.public_key(), NOW + 60, "ljubljana")
    assert err.value.reason is Reason.BAD_SIGNATURE


def test_a_ticket_issued_after_the_delegation_ended_is_refused(
        tenant: Ed25519PrivateKey, till: Ed25519PrivateKey) -> None:
    text = _till_ticket(tenant, till, delegation_to=NOW - 1)
    with pytest.raises(TicketRejected) as err:
        verify_ticket(text, tenant.public_key(), NOW + 60, "ljubljana")
    assert err.value.reason is Reason.EXPIRED


def test_a_till_cannot_issue_tenant_wide_or_for_another_site(
        tenant: Ed25519PrivateKey, till: Ed25519PrivateKey) -> None:
    delegation = delegate_issuer(tenant, public_bytes(till.public_key()), "ljubljana",
                                 NOW + DAY)
    for site in (None, "maribor"):
        with pytest.raises(ValueError):
            issue_ticket(till, kind=TicketKind.DAY_TICKET, ticket_id=TID, valid_from=NOW,
                         valid_to=NOW + DAY, entries=1, site_id=site, delegation=delegation)


def test_every_flipped_bit_is_refused(tenant: Ed25519PrivateKey,
                                      till: Ed25519PrivateKey) -> None:
    text = _till_ticket(tenant, till)
    raw = base64.b32decode(text[3:] + "=" * (-len(text[3:]) % 8))
    for i in range(len(raw)):
        forged = bytearray(raw)
        forged[i] ^= 0x01
        forged_text = "ET1" + base64.b32encode(bytes(forged)).decode().rstrip("=")
        with pytest.raises(TicketRejected):
            verify_ticket(forged_text, tenant.public_key(), NOW + 60, "ljubljana")


@pytest.mark.parametrize("text,reason", [
    ("ET1", Reason.MALFORMED_CREDENTIAL),
    ("ET1!!!!", Reason.MALFORMED_CREDENTIAL),
    ("ET1" + "A" * 500, Reason.MALFORMED_CREDENTIAL),
    ("ET1" + "A" * 64, Reason.MALFORMED_CREDENTIAL),
])
def test_garbage_is_refused_as_unreadable(tenant: Ed25519PrivateKey, text: str,
                                          reason: Reason) -> None:
    with pytest.raises(TicketRejected) as err:
        verify_ticket(text, tenant.public_key(), NOW, None)
    assert err.value.reason is reason


def test_validity_window(tenant: Ed25519PrivateKey) -> None:
    text = issue_ticket(tenant, kind=TicketKind.ENTRY_VOUCHER, ticket_id=TID, valid_from=NOW,
                        valid_to=NOW + DAY, entries=10)
    for now, reason in ((NOW - 1, Reason.NOT_YET_VALID), (NOW + DAY, Reason.EXPIRED)):
        with pytest.raises(TicketRejected) as err:
            verify_ticket(text, tenant.public_key(), now, None)
        assert err.value.reason is reason
    assert verify_ticket(text, tenant.public_key(), NOW + DAY - 1, None).entries == 10


def test_a_member_qr_signature_cannot_pass_as_a_ticket(tenant: Ed25519PrivateKey) -> None:
    # the same key signs member QR tokens and batches: a signature over the body without
    # the ticket context label must not verify
    text = issue_ticket(tenant, kind=TicketKind.DAY_TICKET, ticket_id=TID, valid_from=NOW,
                        valid_to=NOW + DAY, entries=1)
    raw = base64.b32decode(text[3:] + "=" * (-len(text[3:]) % 8))
    body = raw[:40]
    resigned = body + tenant.sign(body)
    forged = "ET1" + base64.b32encode(resigned).decode().rstrip("=")
    with pytest.raises(TicketRejected) as err:
        verify_ticket(forged, tenant.public_key(), NOW, None)
    assert err.value.reason is Reason.BAD_SIGNATURE


def test_ticket_events_round_trip_through_their_data() -> None:
    from contracts.ticket_events import TicketIssued, TicketUsed

    issued = TicketIssued(TID, TicketKind.VALUE_VOUCHER, "ljubljana", NOW, NOW + DAY, 0, 5000,
                          5000, "P1-T1-42", "tenant")
    assert TicketIssued.from_data(issued.to_data()) == issued
    used = TicketUsed(TID, "till", 0, 1200, 0, 3800, "P1-T1-43")
    assert TicketUsed.from_data(used.to_data()) == used
    with pytest.raises(ValueError):
        TicketUsed.from_data({**used.to_data(), "where": "roof"})
