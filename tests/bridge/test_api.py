"""The JSON API: authentication, tenant scoping, validation with clear 4xx answers,
clear UIDs never stored, one signed change-log entry per mutating call, erasure."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from cloud_bridge.db_schema import change_log, credentials, metadata
from cloud_bridge.tenant_keys import TenantKeyError, TenantKeys, add_api_token, create_tenant
from contracts.credential_hash import credential_hash
from contracts.messages import ChangeBatch
from contracts.signed_envelope import open_envelope
from tests.bridge.conftest import FakePublisher

UID = "04:a2:2b:1c:5d:80:00"


def base(tenant: str) -> str:
    return f"/api/v1/tenants/{tenant}"


def changes(published: FakePublisher, keys: TenantKeys) -> list[ChangeBatch]:
    return [ChangeBatch.model_validate(open_envelope(p, keys.public_key))
            for p in published.on("/members/changes")]


def setup_member(client: Any, tenant: str, member_id: str = "m1") -> None:
    r = client.post(f"{base(tenant)}/members", json={
        "id": member_id, "first_name": "Ana", "last_name": "Novak",
        "email": "ana@example.si", "waiver_signed_on": "2026-01-10", "pin": "1234"})
    assert r.status_code == 201, r.text


def test_token_is_required(client: Any, tenant: str) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"},
                    {"Authorization": "Basic dGVzdA=="}):
        r = client.get(f"{base(tenant)}/members", headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/health", headers={"Authorization": ""}).status_code == 200


def test_unknown_tenant_and_bad_ids(client: Any, tenant: str) -> None:
    r = client.get(f"{base('nobody')}/members")
    assert r.status_code == 404 and "cloud-bridge tenant create nobody" in r.json()["detail"]
    assert client.get(f"{base('..')}/members").status_code in (404, 422)
    assert client.get(f"{base(tenant)}/members/has%20space").status_code == 422


def test_every_change_is_one_signed_version_in_order(
        client: Any, tenant: str, tenant_keys: TenantKeys, published: FakePublisher) -> None:
    setup_member(client, tenant)
    r = client.post(f"{base(tenant)}/credentials",
                    json={"id": "c1", "member_id": "m1", "kind": "card", "uid": UID})
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2 and r.json()["signed_qr_only"] is False
    kinds = [
        {"kind": "membership", "valid_from": 1767222000, "valid_to": 1798758000,
         "zones": ["main", "sauna"],
         "windows": [{"days": [0, 1, 2, 3, 4], "start": "06:00", "end": "16:00"}]},
        {"kind": "punch_card", "entries_total": 10},
        {"kind": "day_ticket", "valid_on": "2026-12-01"},
        {"kind": "gift_voucher", "entries_total": 1, "credential_id": "c1"},
    ]
    for i, body in enumerate(kinds):
        r = client.post(f"{base(tenant)}/entitlements",
                        json={"id": f"e{i}", "member_id": "m1", **body})
        assert r.status_code == 201, r.text
    r = client.patch(f"{base(tenant)}/entitlements/e0",
                     json={"frozen_from": 1770000000, "frozen_to": 1771000000})
    assert r.status_code == 200 and r.json()["frozen_to"] == 1771000000
    assert r.json()["zones"] == ["main", "sauna"]  # untouched fields stay
    r = client.patch(f"{base(tenant)}/members/m1", json={"waiver_signed_on": "2026-02-01"})
    assert r.status_code == 200 and r.json()["last_name"] == "Novak"
    assert client.patch(f"{base(tenant)}/credentials/c1", json={"blocked": True}).json()[
        "blocked"]
    assert client.delete(f"{base(tenant)}/entitlements/e2").status_code == 200
    assert client.delete(f"{base(tenant)}/credentials/c1").status_code == 200

    batches = changes(published, tenant_keys)
    assert [(b.from_version, b.to_version) for b in batches] == [(v, v + 1) for v in range(11)]
    assert all(b.tenant == tenant and len(b.changes) == 1 for b in batches)
    member = batches[0].changes[0]
    assert member.first_name == "Ana" and member.pin_hash.startswith("scrypt$")  # type: ignore
    assert not hasattr(member, "last_name")  # devices get the first name only
    card = batches[1].changes[0]
    assert card.hash == credential_hash(tenant_keys.hmac_key, "uid", "04A22B1C5D8000")  # type: ignore
    assert batches[6].changes[0].frozen_from == 1770000000  # type: ignore[union-attr]
    assert batches[-1].changes[0].op == "delete"
    assert client.get(base(tenant)).json()["version"] == 11


def test_clear_uids_and_codes_are_never_stored(client: Any, engine: Engine, tenant: str) -> None:
    setup_member(client, tenant)
    assert client.post(f"{base(tenant)}/credentials", json={
        "member_id": "m1", "kind": "card", "uid": UID}).status_code == 201
    assert client.post(f"{base(tenant)}/credentials", json={
        "member_id": "m1", "kind": "voucher", "code": "GIFT-2026-XYZ"}).status_code == 201
    r = client.post(f"{base(tenant)}/credentials", json={"member_id": "m1", "kind": "qr"})
    assert r.status_code == 201 and r.json()["signed_qr_only"] is True
    with engine.connect() as conn:
        dump = " ".join(str(row) for table in metadata.sorted_tables
                        for row in conn.execute(select(table)))
    for clear in ("04A22B1C5D8000", "04:a2:2b", "04a22b1c5d8000", "GIFT-2026-XYZ"):
        assert clear not in dump
    listed = client.get(f"{base(tenant)}/credentials").json()
    assert {c["kind"] for c in listed} == {"card", "voucher", "qr"}
    assert all(c["hash_ref"] is None or len(c["hash_ref"]) == 16 for c in listed)


@pytest.mark.parametrize(("path", "body", "status", "needle"), [
    ("/members", {"first_name": ""}, 422, "first_name"),
    ("/members", {"first_name": "A" * 41}, 422, "first_name"),
    ("/members", {"first_name": "Ana", "pin": "12"}, 422, "pin"),
    ("/members", {"first_name": "Ana", "favourite": "x"}, 422, "favourite"),
    ("/members", {"id": "bad id", "first_name": "Ana"}, 422, "id"),
    ("/credentials", {"member_id": "m1", "kind": "card", "uid": "zz:11"}, 422, "4-10 bytes"),
    ("/credentials", {"member_id": "m1", "kind": "card"}, 422, "needs uid"),
    ("/credentials", {"member_id": "m1", "kind": "voucher"}, 422, "needs its code"),
    ("/credentials", {"member_id": "m1", "kind": "qr", "uid": "04A22B1C"}, 422, "takes code"),
    ("/credentials", {"member_id": "nobody", "kind": "card", "uid": "04A22B1C"}, 404,
     "member 'nobody'"),
    ("/entitlements", {"member_id": "m1", "kind": "day_ticket"}, 422, "valid_on"),
    ("/entitlements", {"member_id": "m1", "kind": "punch_card"}, 422, "entries_total"),
    ("/entitlements", {"member_id": "m1", "kind": "membership", "valid_from": 10,
                       "valid_to": 5}, 422, "valid_to"),
    ("/entitlements", {"member_id": "m1", "kind": "membership", "frozen_to": 5}, 422,
     "frozen_from"),
    ("/entitlements", {"member_id": "m1", "kind": "membership",
                       "windows": [{"days": [7], "start": "06:00", "end": "07:00"}]}, 422, "days"),
    ("/entitlements", {"member_id": "m1", "kind": "membership",
                       "windows": [{"days": [1], "start": "25:00", "end": "07:00"}]}, 422,
     "wall-clock"),
    ("/entitlements", {"member_id": "m1", "kind": "membership", "credential_id": "nope"}, 422,
     "does not exist"),
    ("/entitlements", {"member_id": "m1", "kind": "season"}, 422, "kind"),
])
def test_invalid_input_gets_a_clear_4xx(client: Any, tenant: str, path: str,
                                        body: dict[str, Any], status: int, needle: str) -> None:
    setup_member(client, tenant)
    r = client.post(base(tenant) + path, json=body)
    assert r.status_code == status, r.text
    assert needle in r.text


def test_conflicts_and_missing(client: Any, tenant: str) -> None:
    setup_member(client, tenant)
    r = client.post(f"{base(tenant)}/members", json={"id": "m1", "first_name": "Bo"})
    assert r.status_code == 409
    card = {"member_id": "m1", "kind": "card", "uid": UID}
    assert client.post(f"{base(tenant)}/credentials", json=card).status_code == 201
    r = client.post(f"{base(tenant)}/credentials", json={**card, "uid": "04A22B1C5D8000"})
    assert r.status_code == 409 and "already issued" in r.json()["detail"]
    assert client.patch(f"{base(tenant)}/members/nobody",
                        json={"blocked": True}).status_code == 404
    assert client.patch(f"{base(tenant)}/members/m1", json={}).status_code == 422
    assert client.delete(f"{base(tenant)}/entitlements/nope").status_code == 404
    r = client.patch(f"{base(tenant)}/entitlements/nope", json={"entries_total": 3})
    assert r.status_code == 404


def test_tenants_do_not_see_each_other(client: Any, tenant: str, keys_dir: Any) -> None:
    other = f"{tenant}-b"
    create_tenant(keys_dir, other)
    setup_member(client, tenant)
    assert client.get(f"{base(other)}/members/m1").status_code == 404
    assert client.get(f"{base(other)}/members").json() == []
    assert client.delete(f"{base(other)}/members/m1").status_code == 404
    assert client.get(f"{base(tenant)}/members/m1").status_code == 200


def test_erasure_removes_the_person_everywhere(
        client: Any, engine: Engine, tenant: str, tenant_keys: TenantKeys,
        published: FakePublisher) -> None:
    setup_member(client, tenant)
    setup_member(client, tenant, "m2")
    client.post(f"{base(tenant)}/credentials",
                json={"id": "c1", "member_id": "m1", "kind": "card", "uid": UID})
    client.post(f"{base(tenant)}/entitlements",
                json={"id": "e1", "member_id": "m1", "kind": "punch_card", "entries_total": 5})
    client.patch(f"{base(tenant)}/members/m1", json={"first_name": "Anamarija"})
    r = client.delete(f"{base(tenant)}/members/m1")
    assert r.status_code == 200 and r.json()["version"] == 6
    assert client.get(f"{base(tenant)}/members/m1").status_code == 404
    assert client.get(f"{base(tenant)}/credentials?member_id=m1").json() == []
    assert client.get(f"{base(tenant)}/entitlements?member_id=m1").json() == []
    digest = credential_hash(tenant_keys.hmac_key, "uid", "04A22B1C5D8000")
    with engine.connect() as conn:
        log_text = " ".join(conn.execute(select(change_log.c.changes).where(
            change_log.c.tenant == tenant)).scalars())
        assert conn.execute(select(credentials).where(credentials.c.tenant == tenant,
                                                      credentials.c.member_id == "m1")).first() \
            is None
        rows = conn.execute(text("SELECT first_name FROM members WHERE tenant = :t"),
                            {"t": tenant}).scalars().all()
    assert "Anamarija" not in log_text and "Novak" not in log_text and digest not in log_text
    assert '"id":"m2"' in log_text  # other people's history is untouched
    assert rows == ["Ana"]  # m2 only
    last = changes(published, tenant_keys)[-1]
    assert (last.from_version, last.to_version) == (5, 6)
    assert [c.model_dump() for c in last.changes] == [
        {"entity": "member", "op": "delete", "id": "m1"}]


def test_events_listing_filters(client: Any, engine: Engine, tenant: str) -> None:
    from cloud_bridge.ingest import Ingestor
    from cloud_bridge.wire import parse_events
    from tests.bridge.device_emulator import batch_payload, make_event

    ing = Ingestor(engine)
    for dev in ("g1", "g2"):
        evs = [make_event(tenant, dev, s, "access.decision" if s % 2 else "device.health")
               for s in range(1, 11)]
        ing.ingest([parse_events(tenant, dev, batch_payload(tenant, dev, evs))])
    ev = f"{base(tenant)}/events"
    assert len(client.get(ev).json()) == 20
    got = client.get(ev, params={"device": "g1", "since_seq": 4, "limit": 3}).json()
    assert [e["seq"] for e in got] == [5, 6, 7]
    got = client.get(ev, params={"device": "g2", "type": "device.health"}).json()
    assert [e["seq"] for e in got] == [2, 4, 6, 8, 10]
    assert client.get(f"{ev}/g1/3").json()["type"] == "access.decision"
    assert client.get(f"{ev}/g1/99").status_code == 404
    assert client.get(ev, params={"limit": 5000}).status_code == 422


def test_commands_are_validated(client: Any, tenant: str, published: FakePublisher) -> None:
    url = f"{base(tenant)}/devices/gate-1/commands"
    assert client.post(url, json={"name": "self-destruct"}).status_code == 422
    assert client.post(url, json={"name": "open", "args": {}}).status_code == 422
    assert client.post(url, json={"name": "reload", "args": {"x": 1}}).status_code == 422
    r = client.post(url, json={"name": "reload"})
    assert r.status_code == 202
    assert published.messages[-1][0] == f"es/v1/{tenant}/gate-1/cmd/reload"
    got = client.get(f"{base(tenant)}/commands/{r.json()['request_id']}").json()
    assert got["answered"] is False and got["name"] == "reload"


def test_a_tenant_token_opens_its_own_tenant_only(client: Any, tenant: str,
                                                  keys_dir: Path) -> None:
    other = f"other{uuid.uuid4().hex[:6]}"
    create_tenant(keys_dir, other)
    token = add_api_token(keys_dir, tenant, "reception-pos")
    mode = (keys_dir / tenant / "api-tokens").stat().st_mode & 0o777
    assert mode == 0o600 and token not in (keys_dir / tenant / "api-tokens").read_text()
    own = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{base(tenant)}/members", headers=own).status_code == 200
    assert client.get(f"{base(tenant)}/attendance/alerts", headers=own).status_code != 401
    assert client.get(f"{base(other)}/members", headers=own).status_code == 401
    assert client.post(f"{base(other)}/members", headers=own,
                       json={"first_name": "Eva"}).status_code == 401
    # the operator's token still opens both
    assert client.get(f"{base(other)}/members").status_code == 200
    # revoked by deleting its line
    (keys_dir / tenant / "api-tokens").write_text("")
    assert client.get(f"{base(tenant)}/members", headers=own).status_code == 401


def test_tenant_tokens_refuse_bad_labels_and_unknown_tenants(keys_dir: Path,
                                                             tenant: str) -> None:
    with pytest.raises(TenantKeyError, match="label"):
        add_api_token(keys_dir, tenant, "bad\nlabel")
    with pytest.raises(TenantKeyError, match="create it first"):
        add_api_token(keys_dir, "nobody", "pos")
    assert not (keys_dir / tenant / "api-tokens").exists()  # nothing half-written
