"""Enrolling the member's phone as a contactless key from their phone page (issue 18,
part 3; docs/phone_nfc.md). The member app makes its Ed25519 key pair in the phone's
keystore, signs ``"edge-suite phone enrolment v1\\0" | tenant | "\\0" | member id`` with
it, and opens the member's phone link with ``&phone_key=<public key hex>&proof=<signature
hex>`` added to the fragment. The page (templates/member_qr.html) asks the member to
confirm and posts both with the link's secret (member_qr.py); the bridge checks the
proof, so nobody can enrol a key they do not hold (and so block its owner from
enrolling it), issues a ``phone`` credential as the API does, and publishes the change
to the devices at once."""

from __future__ import annotations

from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine

from cloud_bridge import change_log
from cloud_bridge.api_models import CredentialIn
from cloud_bridge.change_log import Entry
from cloud_bridge.db_schema import write_tx
from cloud_bridge.errors import Invalid
from cloud_bridge.membership_ops import issue_credential

ENROL_LABEL = b"edge-suite phone enrolment v1\x00"


def enrolment_message(tenant: str, member_id: str) -> bytes:
    """What the app signs to prove it holds the key it enrols, for this member only."""
    return ENROL_LABEL + tenant.encode() + b"\x00" + member_id.encode()


def check_proof(tenant: str, member_id: str, public_key_hex: str, proof_hex: str) -> None:
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        key.verify(bytes.fromhex(proof_hex), enrolment_message(tenant, member_id))
    except (ValueError, InvalidSignature):
        raise Invalid("proof: the phone's signature does not verify") from None


class PhoneKeyDesk:
    """The phone page's view of phone keys: enrol one for the linked member."""

    def __init__(self, engine: Engine, hmac_key: Callable[[str], bytes],
                 publish_entry: Callable[[Entry], None]) -> None:
        self.engine = engine
        self.hmac_key = hmac_key
        self.publish_entry = publish_entry

    def enrol(self, tenant: str, member_id: str, public_key_hex: str, proof_hex: str) -> str:
        """The new credential's id. Invalid (bad proof), Conflict (this key is enrolled
        already) or NotFound (cloud_bridge.errors) when refused; nothing is stored then."""
        check_proof(tenant, member_id, public_key_hex, proof_hex)
        body = CredentialIn(member_id=member_id, kind="phone",
                            public_key=public_key_hex.lower())
        with write_tx(self.engine) as conn:
            cred_id, records = issue_credential(conn, tenant, self.hmac_key(tenant), body)
            entry = change_log.append(conn, tenant, records)
        self.publish_entry(entry)
        return cred_id
