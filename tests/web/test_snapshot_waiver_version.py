"""The signed waiver version travels in membership snapshots (docs/waivers.md): the bridge
makes a snapshot, a real agent store applies it, and the gate tells a member who signed
the older version (on the very day the new one was published, where the day rule would
still admit) from one who signed the current one. SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.access.engine import decide
from agent.access.local_state import load_state
from agent.access.model import GateContext, SiteRules
from agent.store.local_store import LocalStore
from agent.store.sync_store import MembershipData
from cloud_bridge import change_log
from cloud_bridge.api_models import CredentialIn, EntitlementIn, MemberIn, MemberPatch
from cloud_bridge.db_schema import write_tx
from cloud_bridge.membership_ops import (
    create_entitlement,
    create_member,
    issue_credential,
    update_member,
)
from cloud_bridge.snapshot import snapshot_envelopes
from cloud_bridge.tenant_keys import TenantKeyStore
from cloud_bridge.waivers import ensure_waiver_schema, publish, sign
from contracts.credential_hash import credential_hash
from contracts.reasons import Reason
from contracts.signed_envelope import sign_payload
from sync.membership_applier import MembershipApplier, Outcome
from tests.web.conftest import WebSite

LJ = ZoneInfo("Europe/Ljubljana")


def _member(site: WebSite, name: str, uid: str) -> str:
    tenant = site.tenants[0]
    hmac_key = TenantKeyStore(site.keys_dir).get(tenant).hmac_key
    now = int(time.time())
    with write_tx(site.engine) as conn:
        member_id, records = create_member(conn, tenant, MemberIn(first_name=name))
        _, cred = issue_credential(conn, tenant, hmac_key, CredentialIn(
            id=f"card-{name}", member_id=member_id, kind="card", uid=uid))
        _, ent = create_entitlement(conn, tenant, EntitlementIn(
            member_id=member_id, kind="membership", valid_from=now - 86400,
            valid_to=now + 86400))
        change_log.append(conn, tenant, records + cred + ent)
    return member_id


def _sign(site: WebSite, member_id: str, version: int, name: str) -> None:
    with write_tx(site.engine) as conn:
        records = sign(conn, site.tenants[0], member_id, version, name, consent=True)
        change_log.append(conn, site.tenants[0], records)


def test_a_snapshot_carries_the_signed_version_to_the_gate(site: WebSite,
                                                           tmp_path: Path) -> None:
    tenant = site.tenants[0]
    ensure_waiver_schema(site.engine)
    old = _member(site, "Ana", "04AABBCC")
    new = _member(site, "Bor", "04DDEEFF")
    hand = _member(site, "Cene", "04112233")  # a day set by hand: no version known
    v1, _ = publish(site.engine, tenant, "Izjava", "Vadim na lastno odgovornost.", by="t")
    _sign(site, old, v1.version, "Ana Novak")
    v2, _ = publish(site.engine, tenant, "Izjava 2", "Vadim na lastno odgovornost. 2",
                    by="t")
    _sign(site, new, v2.version, "Bor Kos")
    now = datetime.now(UTC)
    with write_tx(site.engine) as conn:
        change_log.append(conn, tenant, update_member(
            conn, tenant, hand, MemberPatch(waiver_signed_on=now.astimezone(LJ).date())))

    keys = TenantKeyStore(site.keys_dir).get(tenant)
    store = LocalStore(tmp_path / "agent.sqlite3")
    applier = MembershipApplier(MembershipData(store), tenant, keys.public_key)
    results = [applier.handle(c.envelope) for c in snapshot_envelopes(site.engine, keys, 4)]
    assert results[-1].outcome is Outcome.APPLIED, results
    assert dict(store.conn.execute("SELECT first_name, waiver_version FROM members")) == {
        "Ana": v1.version, "Bor": v2.version, "Cene": None}

    rules = SiteRules(tz=LJ, waiver_required=True,
                      waiver_current_since=now.astimezone(LJ).date(),
                      waiver_current_version=v2.version)

    def gate(uid: str) -> Reason:  # the card read at the gate, hashed as a reader does
        digest = credential_hash(keys.hmac_key, "uid", uid)
        state = load_state(store.conn, lookup_hash=digest, credential_id=None,
                           now=now, rules=rules, need_occupancy=False, device="gate-1")
        return decide(GateContext("g1", "main", "in"), now, state, rules).reason

    # Ana signed v1 today, the day v2 took effect: only the version tells her apart
    assert gate("04AABBCC") is Reason.WAIVER_MISSING
    assert gate("04DDEEFF") is Reason.GRANTED
    assert gate("04112233") is Reason.GRANTED  # unknown version: the day rule, as before
    store.close()


def test_a_snapshot_row_without_the_version_still_loads(tmp_path: Path) -> None:
    """A chunk from a bridge before this change (four items per member) is applied, the
    version unknown; a fifth item that is no version id is refused, the data kept."""
    key = Ed25519PrivateKey.generate()

    def chunk(version: int, members: list[list[object]]) -> bytes:
        return sign_payload(key, {"v": 1, "tenant": "t1", "kind": "snapshot",
                                  "snapshot_id": f"s{version}", "version": version,
                                  "chunk": 0, "chunks": 1, "members": members})

    store = LocalStore(tmp_path / "agent.sqlite3")
    applier = MembershipApplier(MembershipData(store), "t1", key.public_key())
    assert applier.handle(chunk(3, [["m1", "Ana", "2026-06-01", False],
                                    ["m2", "Bor", "2026-06-01", False, 2]])).outcome \
        is Outcome.APPLIED
    assert dict(store.conn.execute("SELECT id, waiver_version FROM members")) == {
        "m1": None, "m2": 2}
    bad = applier.handle(chunk(4, [["m1", "Ana", "2026-06-01", False, 0]]))
    assert bad.outcome is Outcome.REJECTED
    assert store.membership_version() == 3
    store.close()
