"""A phone enrolled through the API (docs/phone_nfc.md): its public key travels in the
signed membership data as the keyed hash a device computes from a verified phone read."""

from __future__ import annotations

import os
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent.credentials.phone_key import phone_lookup_hash
from cloud_bridge.tenant_keys import TenantKeys
from drivers.phone_applet import signed_message
from tests.bridge.conftest import FakePublisher
from tests.bridge.test_api import base, changes, setup_member


def test_enrolled_phone_key_reaches_devices_signed_and_matches_a_verified_read(
        client: Any, tenant: str, tenant_keys: TenantKeys, published: FakePublisher) -> None:
    setup_member(client, tenant)
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    r = client.post(f"{base(tenant)}/credentials", json={
        "id": "p1", "member_id": "m1", "kind": "phone", "public_key": public.upper()})
    assert r.status_code == 201, r.text
    records = [c for batch in changes(published, tenant_keys) for c in batch.changes
               if getattr(c, "entity", None) == "credential"]
    assert len(records) == 1 and records[0].kind == "phone"  # type: ignore[union-attr]
    challenge = os.urandom(32)
    extra = (("phone_challenge", challenge.hex()),
             ("phone_signature", key.sign(signed_message(challenge)).hex()))
    assert records[0].hash == phone_lookup_hash(  # type: ignore[union-attr]
        tenant_keys.hmac_key, public, extra)


@pytest.mark.parametrize(("body", "needle"), [
    ({"kind": "phone"}, "public_key"),
    ({"kind": "phone", "public_key": "ab" * 31}, "public_key"),
    ({"kind": "card", "uid": "04A22B1C", "public_key": "ab" * 32}, "public_key"),
    ({"kind": "phone", "public_key": "ab" * 32, "code": "x"}, "not uid or code"),
])
def test_bad_phone_enrolments_are_refused(client: Any, tenant: str, body: dict[str, Any],
                                          needle: str) -> None:
    setup_member(client, tenant)
    r = client.post(f"{base(tenant)}/credentials", json={"member_id": "m1", **body})
    assert r.status_code == 422 and needle in r.text, r.text
