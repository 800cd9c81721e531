"""A catalogue version as the signed envelope a till accepts (contracts/till_catalogue.py),
signed with the tenant's Ed25519 key like membership snapshots."""

from __future__ import annotations

from collections.abc import Sequence

from cloud_bridge.tenant_keys import TenantKeys
from contracts.signed_envelope import sign_payload
from contracts.till_catalogue import CataloguePayload, CatalogueProduct


def catalogue_envelope(keys: TenantKeys, version: int,
                       products: Sequence[CatalogueProduct]) -> bytes:
    payload = CataloguePayload(tenant=keys.tenant, version=version, products=list(products))
    return sign_payload(keys.signing_key, payload.model_dump(mode="json"))
