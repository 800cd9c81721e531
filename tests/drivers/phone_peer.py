"""A member's phone for the reader tests: the HCE applet of docs/phone_nfc.md with a real
Ed25519 key, played by a virtual card on vpcd (tests/drivers/pcsc_peer.py's socket
protocol) or over ISO-DEP on nfcpy's UDP transport (tests/drivers/nfc_peer.py). ``replay``
makes a "copying" phone that answers every challenge with a signature recorded earlier.

Not vsmartcard's ``vicc``: it is not packaged as a program on Debian and its run loop has
no stop; the project's vpcd peer already speaks vpcd's socket protocol."""

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


class PhoneApplet:
    """The member app's HostApduService: command APDU in, response APDU out."""

    def __init__(self, key: Ed25519PrivateKey, replay: bytes | None = None) -> None:
        self.key = key
        self.replay = replay
        self.signed: list[bytes] = []  # the challenges it signed
        self.selected = False

    def __call__(self, apdu: bytes) -> bytes:
        if apdu[:5] == SELECT_HEADER and apdu[5:5 + len(AID)] == AID:
            self.selected = True
            return bytes.fromhex(public_hex(self.key)) + b"\x90\x00"
        if apdu[:4] == bytes([0x00, 0x88, 0x00, 0x00]) and self.selected:
            challenge = apdu[5:5 + apdu[4]]
            self.signed.append(challenge)
            return (self.replay or self.key.sign(signed_message(challenge))) + b"\x90\x00"
        if apdu[:2] == bytes([0x00, 0xA4]):
            return b"\x6A\x82"  # another AID: not found
        return b"\x6D\x00"


class VirtualPhone(VirtualCard):
    """The phone on the PC/SC reader (vpcd): a power-up starts a new applet session."""

    def __init__(self, port: int, key: Ed25519PrivateKey, replay: bytes | None = None) -> None:
        self.applet = PhoneApplet(key, replay)
        super().__init__(port, uid=bytes.fromhex("08A1B2C3"))  # phones give a random UID

    @property
    def signed(self) -> list[bytes]:
        return self.applet.signed

    def _answer(self, msg: bytes) -> bytes | None:
        if len(msg) == 1:
            self.applet.selected = False
            return ATR_ISO_DEP if msg[0] == 4 else None
        self.apdus.append(msg)
        if msg[:2] in (bytes([0x00, 0xA4]), bytes([0x00, 0x88])):
            return self.applet(msg)
        return super()._answer(msg)
