"""A member's phone for the reader tests: the HCE applet of docs/phone_nfc.md played by a
virtual card on vpcd (tests/drivers/pcsc_peer.py's socket protocol) with a real Ed25519
key. ``replay`` makes a "copying" phone that answers every challenge with a signature it
recorded earlier, as a relay/replay attacker would."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from drivers.phone_applet import AID, signed_message
from tests.drivers.pcsc_peer import VirtualCard

# ATR of an ISO 14443-4 (ISO-DEP) target behind a PC/SC part 3 reader, as phones show
ATR_ISO_DEP = bytes.fromhex("3B8080010101")
SELECT_HEADER = bytes([0x00, 0xA4, 0x04, 0x00, len(AID)])


def public_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


class VirtualPhone(VirtualCard):
    def __init__(self, port: int, key: Ed25519PrivateKey, replay: bytes | None = None) -> None:
        self.key = key
        self.replay = replay
        self.signed: list[bytes] = []  # the challenges it signed
        self._selected = False
        super().__init__(port, uid=bytes.fromhex("08A1B2C3"))  # phones give a random UID

    def _answer(self, msg: bytes) -> bytes | None:
        if len(msg) == 1:
            self._selected = False
            return ATR_ISO_DEP if msg[0] == 4 else None
        self.apdus.append(msg)
        if msg[:5] == SELECT_HEADER and msg[5:5 + len(AID)] == AID:
            self._selected = True
            return bytes.fromhex(public_hex(self.key)) + b"\x90\x00"
        if msg[:4] == bytes([0x00, 0x88, 0x00, 0x00]) and self._selected:
            challenge = msg[5:5 + msg[4]]
            self.signed.append(challenge)
            signature = self.replay or self.key.sign(signed_message(challenge))
            return signature + b"\x90\x00"
        if msg[:2] == bytes([0x00, 0xA4]):
            return b"\x6A\x82"  # another AID: not found
        return super()._answer(msg)
