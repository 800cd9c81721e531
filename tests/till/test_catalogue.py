"""The till catalogue as the bridge signs it (cloud_bridge/catalogue/envelope.py) and the
device accepts it (agent/till/catalogue.py): the tenant's signature, the tenant, newer
versions only; the till keeps its version when an update is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.errors import ConfigError
from agent.till.catalogue import CatalogueUpdates, load_catalogue
from cloud_bridge.catalogue.envelope import catalogue_envelope
from cloud_bridge.tenant_keys import TenantKeys
from contracts.till_catalogue import CatalogueProduct

KAVA = CatalogueProduct(id="kava", name="Kava z mlekom", price="1.80", vat="9.5",
                        category="Pijače", barcode="3830001234567")
VODA = CatalogueProduct(id="voda", name="Mineralna voda", price="1.20", vat="9.5")


def _keys(tenant: str = "t1") -> TenantKeys:
    return TenantKeys(tenant, Ed25519PrivateKey.generate(), b"h" * 32)


def test_signed_versions_only_forward(tmp_path: Path) -> None:
    keys = _keys()
    path = tmp_path / "catalogue.json"
    path.write_bytes(catalogue_envelope(keys, 3, [KAVA]))
    current = load_catalogue(path, keys.public_key_raw, "t1")
    assert current.version == 3 and current.by_barcode["3830001234567"].price_cents == 180

    updates = CatalogueUpdates(path, keys.public_key_raw, "t1")
    newer = updates.accept(catalogue_envelope(keys, 4, [KAVA, VODA]), current)
    assert newer.version == 4 and set(newer.products) == {"kava", "voda"}
    assert load_catalogue(path, keys.public_key_raw, "t1").version == 4  # the file follows

    refused = [
        catalogue_envelope(keys, 4, [KAVA]),  # not newer
        catalogue_envelope(_keys("t1"), 5, [KAVA]),  # the same tenant name, another key
        catalogue_envelope(_keys("t2"), 5, [KAVA]),  # another tenant's key and tenant
        json.dumps({"version": 9, "products": []}).encode(),  # unsigned
    ]
    for data in refused:
        with pytest.raises(ConfigError):
            updates.accept(data, newer)
    assert load_catalogue(path, keys.public_key_raw, "t1").version == 4


def test_tampered_or_unsigned_file_is_refused(tmp_path: Path) -> None:
    keys = _keys()
    path = tmp_path / "catalogue.json"
    envelope = json.loads(catalogue_envelope(keys, 1, [KAVA]))
    envelope["sig"] = catalogue_envelope(keys, 2, [KAVA]).decode().split('"sig": "')[1][:-2]
    path.write_text(json.dumps(envelope))
    with pytest.raises(ConfigError, match="refused"):
        load_catalogue(path, keys.public_key_raw, "t1")
    path.write_text(json.dumps({"version": 1, "products": []}))
    with pytest.raises(ConfigError):
        load_catalogue(path, keys.public_key_raw, "t1")
    assert load_catalogue(path).version == 1  # a device without a tenant key: plain JSON
