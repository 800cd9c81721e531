"""NTAG 424 DNA SUN: the official NXP vectors, generated cards with random keys, and SUN
reads through the real store (counter replay, secure-card gates, another tenant's card,
erasure of the counter)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from agent.credentials.ntag424_sun import (
    SunKeys,
    SunMessage,
    SunRejected,
    decrypt_picc_data,
    diversify_an10922,
    emulate_sun,
    session_mac_key,
    verify_sun,
    verify_sun_with,
)
from agent.credentials.read_parser import parse_read, sun_message_from_url
from contracts.credential_hash import credential_hash
from contracts.reasons import Reason
from tests.store_helpers import GATE_IN, GATE_OUT, load, make_service, year_membership

ZERO = bytes(16)


# --- official vectors --------------------------------------------------------------

def test_an12196_sun_message_with_picc_data_and_sdmmac() -> None:
    """NXP AN12196 (Rev. 1.9/2.0) section 3.4.2.1 Table 2 "PICCData decryption" and
    section 3.4.4.2.1 Table 4 "SUN MAC calculation" (the URL example on page 12,
    ``https://choose.url.com/ntag424?e=EF963FF7828658A599F3041510671E88&c=94EED9EE65337086``):
    all-zero factory keys, PICCDataTag C7, UID 04DE5F1EACC040, SDMReadCtr 3D0000 (61),
    SV2 3CC30001008004DE5F1EACC0403D0000, KSesSDMFileReadMAC
    3FB5F6E3A807A03D5E3570ACE393776F, SDMMAC over an empty input = 94EED9EE65337086."""
    picc = bytes.fromhex("EF963FF7828658A599F3041510671E88")
    tag, uid, ctr = decrypt_picc_data(ZERO, picc)
    assert (tag, uid.hex().upper(), ctr.hex().upper()) == (0xC7, "04DE5F1EACC040", "3D0000")
    assert session_mac_key(ZERO, uid, ctr).hex().upper() == "3FB5F6E3A807A03D5E3570ACE393776F"
    msg = sun_message_from_url(
        "https://choose.url.com/ntag424?e=EF963FF7828658A599F3041510671E88&c=94EED9EE65337086")
    assert msg == SunMessage(picc, bytes.fromhex("94EED9EE65337086"))
    read = verify_sun_with(msg, ZERO, lambda _uid: ZERO)
    assert read.uid_hex == "04DE5F1EACC040" and read.counter == 61
    for bad in (replace(msg, sdmmac=bytes.fromhex("94EED9EE65337087")),
                replace(msg, picc_data=bytes([picc[0] ^ 1]) + picc[1:])):
        with pytest.raises(SunRejected) as exc:
            verify_sun_with(bad, ZERO, lambda _uid: ZERO)
        assert exc.value.reason is Reason.BAD_SIGNATURE


def test_an12196_sun_message_with_encrypted_file_data() -> None:
    """NXP AN12196 section 3.4.4 example with SDMENCFileData (page 18):
    ``?picc_data=FD91EC264309878BE6345CBE53BADF40&enc=CEE9A53E3E463EF1F459635736738962
    &cmac=ECC1E7F6C6C73BF6`` — the MAC input window is the ASCII text from the enc value
    up to and including ``&cmac=``; UID 04958CAA5C5E80, counter 8."""
    url = ("https://www.my424dna.com/?picc_data=FD91EC264309878BE6345CBE53BADF40"
           "&enc=CEE9A53E3E463EF1F459635736738962&cmac=ECC1E7F6C6C73BF6")
    msg = sun_message_from_url(url)
    assert msg is not None and msg.mac_input == b"CEE9A53E3E463EF1F459635736738962&cmac="
    read = verify_sun_with(msg, ZERO, lambda _uid: ZERO)
    assert read.uid_hex == "04958CAA5C5E80" and read.counter == 8


def test_an12196_session_key_generation() -> None:
    """NXP AN12196 section 3.3 Table 1 "SDM session key generation": SDMFileReadKey
    5ACE7E50AB65D5D51FD5BF5A16B8205B, UID 04C767F2066180, SDMReadCtr 010000 ->
    SV2 3CC30001008004C767F2066180010000, KSesSDMFileReadMAC
    3A3E8110E05311F7A3FCF0D969BF2B48."""
    key = bytes.fromhex("5ACE7E50AB65D5D51FD5BF5A16B8205B")
    assert session_mac_key(key, bytes.fromhex("04C767F2066180"), bytes.fromhex("010000")) \
        == bytes.fromhex("3A3E8110E05311F7A3FCF0D969BF2B48")


def test_an10922_aes128_key_diversification() -> None:
    """NXP AN10922 section 2.2.1 (AES-128 diversification example, page 7): master
    00112233445566778899AABBCCDDEEFF, M = UID 04782E21801D80 || AID 3042F5 || system id
    "NXP Abu" (4E585020416275) -> diversified key A8DD63A3B89D54B37CA802473FDA9175."""
    master = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    m = bytes.fromhex("04782E21801D803042F54E585020416275")
    assert diversify_an10922(master, m) == bytes.fromhex("A8DD63A3B89D54B37CA802473FDA9175")


# --- generated cards -------------------------------------------------------------------

@dataclass
class EmulatedCard:
    """An NTAG 424 DNA personalised for a tenant: each read bumps SDMReadCtr."""

    keys: SunKeys
    uid: bytes
    counter: int = 0

    @property
    def uid_hex(self) -> str:
        return self.uid.hex().upper()

    def tap(self) -> SunMessage:
        self.counter += 1
        return emulate_sun(self.keys, self.uid, self.counter)

    def url(self, short: bool = False) -> str:
        msg = self.tap()
        p, c = ("e", "c") if short else ("picc_data", "cmac")
        return f"https://gym.example/t?{p}={msg.picc_data.hex().upper()}&{c}={msg.sdmmac.hex()}"

    def extra(self) -> tuple[tuple[str, str], ...]:
        msg = self.tap()
        return (("sun_picc_data", msg.picc_data.hex()), ("sun_cmac", msg.sdmmac.hex()))


def new_card(keys: SunKeys) -> EmulatedCard:
    return EmulatedCard(keys, b"\x04" + os.urandom(6))


def random_keys(tenant: str = "t1") -> SunKeys:
    return SunKeys(tenant, os.urandom(16), os.urandom(16))


def test_generated_cards_verify_and_every_bit_matters() -> None:
    for _ in range(20):
        keys = random_keys()
        card = new_card(keys)
        msg = card.tap()
        read = verify_sun(msg, keys)
        assert read.uid == card.uid and read.counter == 1
        assert card.uid_hex not in repr(read)
        for i in range(16):
            flipped = bytearray(msg.picc_data)
            flipped[i] ^= 0x01
            with pytest.raises(SunRejected):
                verify_sun(replace(msg, picc_data=bytes(flipped)), keys)
        for i in range(8):
            flipped = bytearray(msg.sdmmac)
            flipped[i] ^= 0x80
            with pytest.raises(SunRejected):
                verify_sun(replace(msg, sdmmac=bytes(flipped)), keys)


def test_another_tenants_card_and_a_card_keyed_for_another_uid_are_refused() -> None:
    """Derived keys are per tenant, and per-card MAC keys per UID (AN10922)."""
    k1 = SunKeys.derive(b"s" * 32, "t1")
    k2 = SunKeys.derive(b"s" * 32, "t2")  # same secret, other tenant: unrelated keys
    assert k1.meta_read_key != k2.meta_read_key and k1.file_master != k2.file_master
    card = new_card(k2)
    with pytest.raises(SunRejected) as exc:
        verify_sun(card.tap(), k1)
    assert exc.value.reason is Reason.BAD_SIGNATURE
    # a card whose MAC key is diversified for a different UID (a key copied to a blank)
    other = b"\x04" + os.urandom(6)
    forged = emulate_sun(k1, other, 5, file_read_key=k1.file_read_key(card.uid))
    with pytest.raises(SunRejected):
        verify_sun(forged, k1)
    assert k1.file_read_key(card.uid) != k1.file_read_key(other)


@pytest.mark.parametrize("url", [
    "https://x.example/?picc_data=ABC&cmac=0011223344556677",
    "https://x.example/?picc_data=" + "0" * 32,
    "https://x.example/?e=" + "Z" * 32 + "&c=" + "0" * 16,
    "https://x.example/?e=" + "0" * 32 + "&c=" + "0" * 15,
    "https://x.example/?e=" + "0" * 32 + "&enc=0&c=" + "0" * 16,
])
def test_malformed_sun_urls(url: str, hmac_key: bytes) -> None:
    parsed = parse_read("qr", url, hmac_key, None, 0, SunKeys.derive(hmac_key, "t1"))
    assert parsed.problem is Reason.MALFORMED_CREDENTIAL and parsed.lookup_hash is None


def test_a_url_without_sun_parameters_stays_a_static_code(hmac_key: bytes) -> None:
    parsed = parse_read("qr", "https://x.example/?member=7", hmac_key, None, 0,
                        SunKeys.derive(hmac_key, "t1"))
    assert parsed.problem is None and not parsed.secure
    assert parsed.lookup_hash == credential_hash(hmac_key, "qr", "https://x.example/?member=7")


# --- through the store -------------------------------------------------------------------

def sun_member(hmac_key: bytes, card: EmulatedCard, member: str = "m1") -> list[dict]:
    return [
        {"entity": "member", "op": "upsert", "id": member, "first_name": "Ana"},
        {"entity": "credential", "op": "upsert", "id": f"{member}-c", "member_id": member,
         "kind": "card", "hash": credential_hash(hmac_key, "uid", card.uid_hex)},
        {"entity": "entitlement", "op": "upsert", "id": f"{member}-e", "member_id": member,
         **year_membership()},
    ]


def test_sun_reads_grant_once_per_counter_and_replays_are_refused(
        tmp_path: Path, hmac_key: bytes) -> None:
    svc = make_service(tmp_path / "a.db", hmac_key, repeat_window_s=0)
    card = new_card(svc.sun_keys)
    load(svc.store, sun_member(hmac_key, card))
    first = card.url()
    assert svc.tap("entry", "qr", first, GATE_IN).granted
    # the same URL again (a photo of a phone screen, a recorded NDEF message): replayed
    assert svc.tap("entry", "qr", first, GATE_IN).decision.reason is Reason.REPLAYED
    older = emulate_sun(svc.sun_keys, card.uid, 0)  # a counter below the last one
    older_url = f"https://g/?e={older.picc_data.hex()}&c={older.sdmmac.hex()}"
    assert svc.tap("entry", "qr", older_url, GATE_IN).decision.reason is Reason.REPLAYED
    # the card itself goes on working: short e=/c= form, and a reader's extra
    assert svc.tap("exit", "qr", card.url(short=True), GATE_OUT).granted
    assert svc.tap("entry", "uid", "", GATE_IN, card.extra()).granted
    row = svc.store.conn.execute("SELECT credential_id, counter FROM sun_counters").fetchall()
    assert row == [("m1-c", card.counter)]
    # no UID in any event or in the counter table
    dump = json.dumps([r for r in svc.store.conn.execute("SELECT data FROM outbox")])
    assert card.uid_hex not in dump and card.uid_hex.lower() not in dump


def test_gate_requiring_secure_cards(tmp_path: Path, hmac_key: bytes) -> None:
    svc = make_service(tmp_path / "a.db", hmac_key, repeat_window_s=0)
    card = new_card(svc.sun_keys)
    load(svc.store, sun_member(hmac_key, card))
    secure_gate = replace(GATE_IN, require_secure_card=True)
    # a clone that copies only the UID is refused at the secure gate ...
    assert svc.tap("entry", "uid", card.uid_hex, secure_gate).decision.reason \
        is Reason.SECURE_CARD_REQUIRED
    # ... while the genuine card is let in
    assert svc.tap("entry", "uid", "", secure_gate, card.extra()).granted
    # ordinary gates keep taking plain UIDs (migration period)
    assert svc.tap("entry2", "uid", card.uid_hex, GATE_IN).granted


def test_reader_extra_must_match_the_anticollision_uid(tmp_path: Path, hmac_key: bytes) -> None:
    svc = make_service(tmp_path / "a.db", hmac_key, repeat_window_s=0)
    card, other = new_card(svc.sun_keys), new_card(svc.sun_keys)
    load(svc.store, sun_member(hmac_key, card))
    # a genuine message relayed by a device that shows another UID on the field
    out = svc.tap("entry", "uid", other.uid_hex, GATE_IN, card.extra())
    assert out.decision.reason is Reason.BAD_SIGNATURE
    assert svc.tap("entry", "uid", card.uid_hex, GATE_IN, card.extra()).granted
    incomplete = (("sun_picc_data", "00" * 16),)
    assert svc.tap("entry", "uid", card.uid_hex, GATE_IN, incomplete).decision.reason \
        is Reason.MALFORMED_CREDENTIAL


def test_foreign_tenant_card_is_a_bad_signature(tmp_path: Path, hmac_key: bytes) -> None:
    svc = make_service(tmp_path / "a.db", hmac_key)
    foreign = new_card(SunKeys.derive(hmac_key, "t2"))
    load(svc.store, sun_member(hmac_key, foreign))  # even if the hash were known here
    assert svc.tap("entry", "qr", foreign.url(), GATE_IN).decision.reason \
        is Reason.BAD_SIGNATURE


def test_erasing_the_member_removes_the_counter(tmp_path: Path, hmac_key: bytes) -> None:
    svc = make_service(tmp_path / "a.db", hmac_key)
    card = new_card(svc.sun_keys)
    load(svc.store, sun_member(hmac_key, card))
    assert svc.tap("entry", "qr", card.url(), GATE_IN).granted
    load(svc.store, [{"entity": "member", "op": "delete", "id": "m1"}])
    svc.forget_recent()  # what the membership applier calls after every change
    assert svc.store.conn.execute("SELECT COUNT(*) FROM sun_counters").fetchone()[0] == 0
