"""A member's phone as a contactless credential (issue 18, part 3; docs/phone_nfc.md):
real pcscd + vpcd with a virtual phone playing the HCE applet, read by the `pcsc:`
back-end inside a real AgentDaemon and decided offline: an enrolled key is granted, a
copied response (a signature over an earlier challenge) and an unknown key are refused,
and a card without the applet is still read by its UID."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import load_config
from agent.credentials.phone_key import PhoneRejected, phone_lookup_hash
from agent.daemon import AgentDaemon
from agent.store.membership import SyntheticMember, bulk_insert, synthetic_changes
from contracts.credential_hash import credential_hash
from drivers.phone_applet import signed_message
from drivers.protocols import CardRead, HealthState
from drivers.registry import open_peripheral
from tests.drivers.nfc_peer import SimulatedPhone, free_udp_port
from tests.drivers.pcsc_peer import PcscPeer
from tests.drivers.phone_peer import PhoneApplet, VirtualPhone, public_hex
from tests.drivers.reader_helpers import Collector, wait_for, wait_health

READER = """
[[gates]]
id = "g1"
url = "sim:"
zone = "main"
require_secure_card = true

[[readers]]
id = "door"
url = "pcsc:?reader=Virtual PCD 00 00&holdoff_ms=100"
gate = "g1"
direction = "in"
"""


@pytest.fixture
def agent(write_config: Callable[..., Path], tmp_path: Path
          ) -> Iterator[tuple[AgentDaemon, PcscPeer, list[tuple[CardRead, Any]]]]:
    peer = PcscPeer(tmp_path / "pcsc")
    daemon = AgentDaemon(load_config(write_config(gates=READER)))
    decided: list[tuple[CardRead, Any]] = []
    lock = threading.Lock()
    handle = daemon.handle_read

    def recording(read: CardRead) -> Any:
        outcome = handle(read)
        with lock:
            decided.append((read, outcome))
        return outcome

    daemon.handle_read = recording  # type: ignore[method-assign]
    peer.start()
    daemon.start()
    try:
        yield daemon, peer, decided
    finally:
        daemon.stop()
        peer.close()


def enrol_phone(daemon: AgentDaemon, member: str, key: Ed25519PrivateKey) -> None:
    """The member and the phone credential as the signed membership data brings them."""
    hmac_key = daemon.config.hmac_key()
    record = SyntheticMember.model_validate(
        {"id": member, "first_name": "Nina",
         "entitlement": {"entity": "entitlement", "op": "upsert", "id": f"{member}-e",
                         "member_id": member, "kind": "membership"}})
    with daemon.store.transaction() as conn:
        bulk_insert(conn, *synthetic_changes(hmac_key, [record]))
        conn.execute("INSERT INTO credentials(hash, id, member_id, kind, blocked) "
                     "VALUES (?, ?, ?, 'phone', 0)",
                     (credential_hash(hmac_key, "phone", public_hex(key)), f"{member}-p",
                      member))


def tap(peer: PcscPeer, phone: VirtualPhone, decided: list[tuple[CardRead, Any]]) -> Any:
    before = len(decided)
    peer.cards.append(phone)
    wait_for(lambda: len(decided) > before, 10, "a decision")
    phone.remove()
    time.sleep(0.2)  # past the hold-off
    return decided[-1]


def test_enrolled_phone_is_granted_and_a_copied_response_is_refused(
        agent: tuple[AgentDaemon, PcscPeer, list[tuple[CardRead, Any]]]) -> None:
    daemon, peer, decided = agent
    key = Ed25519PrivateKey.generate()
    enrol_phone(daemon, "m-phone", key)
    wait_for(lambda: daemon.status()["peripherals"][0]["health"] == "ok", 10, "reader up")

    read, outcome = tap(peer, VirtualPhone(peer.port, key), decided)
    assert read.kind == "phone" and read.value == public_hex(key)
    assert outcome.granted and outcome.member_id == "m-phone", outcome.decision
    first_challenge = dict(read.extra)["phone_challenge"]

    # the same phone again: a fresh challenge, granted again
    phone = VirtualPhone(peer.port, key)
    read, outcome = tap(peer, phone, decided)
    assert outcome.granted
    assert dict(read.extra)["phone_challenge"] != first_challenge
    recorded = key.sign(signed_message(phone.signed[0]))  # what an eavesdropper saw

    # a copy: the right key, a signature recorded at the earlier tap
    read, outcome = tap(peer, VirtualPhone(peer.port, key, replay=recorded), decided)
    assert not outcome.granted and outcome.decision.reason.value == "bad_signature"

    # a phone with our app but a key nobody enrolled
    read, outcome = tap(peer, VirtualPhone(peer.port, Ed25519PrivateKey.generate()), decided)
    assert not outcome.granted and outcome.decision.reason.value == "unknown_credential"

    # a plain card on the same reader: no applet, read by its UID (and refused here,
    # this gate wants a credential that cannot be copied)
    card = peer.insert("04A1B2C3D4E5F6")
    wait_for(lambda: decided[-1][0].kind == "uid", 10, "the card's decision")
    card.remove()
    assert decided[-1][0].value == "04A1B2C3D4E5F6"
    assert decided[-1][1].decision.reason.value == "secure_card_required"


def test_phone_on_an_nfcpy_reader_over_iso_dep() -> None:
    """The `nfc:` back-end: nfcpy's UDP transport, the phone an ISO-DEP target answering
    RATS and carrying the applet's APDUs in I-blocks; a fresh challenge per tap."""
    key = Ed25519PrivateKey.generate()
    applet = PhoneApplet(key)
    port = free_udp_port()
    phone = SimulatedPhone(port, applet)
    reader = open_peripheral("reader", "nfc1", f"nfc:udp:127.0.0.1:{port}",
                             {"poll_ms": 50, "absent_ms": 1500, "holdoff_ms": 200})
    got = Collector()
    reader.start(got)
    try:
        wait_health(reader.health, HealthState.OK)
        phone.place()
        first = got.wait_count(1)
        assert first == [public_hex(key)] and got.reads[0].kind == "phone"
        hmac_key = b"k" * 32
        extra = got.reads[0].extra
        assert phone_lookup_hash(hmac_key, first[0], extra) == credential_hash(
            hmac_key, "phone", public_hex(key))
        phone.remove()
        wait_for(lambda: applet.signed and len(got.reads) == 1, 1, "one read while held")
        time.sleep(2.0)  # gone (nfcpy's UDP poll answers a missing card after 1 s)
        phone.place()
        got.wait_count(2)
        assert dict(got.reads[1].extra)["phone_challenge"] != dict(extra)["phone_challenge"]
        # the copied answer of the first tap, checked against the second tap's challenge
        copied = (("phone_challenge", dict(got.reads[1].extra)["phone_challenge"]),
                  ("phone_signature", dict(extra)["phone_signature"]))
        with pytest.raises(PhoneRejected):
            phone_lookup_hash(hmac_key, first[0], copied)
    finally:
        reader.stop()
        phone.close()
