"""The APDU exchange with a member's phone acting as a contactless credential, the way
Android host card emulation (HCE) works (docs/phone_nfc.md).

The phone's app registers our AID. The reader, over ISO-DEP (ISO 14443-4):

1. ``SELECT`` by AID (``00 A4 04 00 Lc AID 00``): the phone answers with its 32-byte
   Ed25519 public key and ``90 00``. A card without our applet answers anything else
   (``6A 82`` file not found, ``6D 00``...), and the reader reads its UID as before.
2. ``INTERNAL AUTHENTICATE`` (``00 88 00 00 20 <32-byte challenge> 00``): a fresh random
   challenge per tap; the phone signs :func:`signed_message` with its private key and
   answers with the 64-byte signature and ``90 00``.

The reader delivers ``CardRead(kind="phone", value=<public key hex>, extra=(("phone_
challenge", hex), ("phone_signature", hex)))``; the agent verifies the signature and
looks the key up among the enrolled credentials (agent/credentials/phone_key.py). The
challenge is made here, in the reader's process, from ``os.urandom``: a response copied
from an earlier tap signs another challenge and does not verify.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

# a proprietary AID (category F: not registered with ISO), "EDGESUITE" + version 1
AID = bytes.fromhex("F0454447455355495445") + b"\x01"
CHALLENGE_BYTES = 32
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
_DOMAIN = b"edge-suite phone credential v1\x00"
OK = b"\x90\x00"

# what a reader back-end gives: send one command APDU, get the response (data + SW1 SW2)
Transmit = Callable[[bytes], bytes]


def select_apdu() -> bytes:
    return bytes([0x00, 0xA4, 0x04, 0x00, len(AID)]) + AID + b"\x00"


def authenticate_apdu(challenge: bytes) -> bytes:
    return bytes([0x00, 0x88, 0x00, 0x00, len(challenge)]) + challenge + b"\x00"


def signed_message(challenge: bytes) -> bytes:
    """What the phone signs: a domain label (a signature made for something else never
    passes here) and the reader's challenge."""
    return _DOMAIN + challenge


@dataclass(frozen=True, slots=True)
class PhoneAnswer:
    public_key: bytes
    challenge: bytes
    signature: bytes

    def extra(self) -> tuple[tuple[str, str], ...]:
        return (("phone_challenge", self.challenge.hex()),
                ("phone_signature", self.signature.hex()))


class NotAPhone(Exception):
    """The card has no applet of ours (its SELECT was refused): read it as a card."""


class PhoneRefused(Exception):
    """A phone answered our SELECT but the exchange failed (``drop`` names the count)."""

    def __init__(self, drop: str) -> None:
        super().__init__(drop)
        self.drop = drop


def exchange(transmit: Transmit, challenge: bytes | None = None) -> PhoneAnswer:
    """SELECT our AID, then have the phone sign a fresh challenge."""
    reply = transmit(select_apdu())
    if len(reply) < 2 or reply[-2:] != OK:
        raise NotAPhone
    public_key = reply[:-2]
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise PhoneRefused("phone_bad_key")
    challenge = challenge if challenge is not None else os.urandom(CHALLENGE_BYTES)
    reply = transmit(authenticate_apdu(challenge))
    if len(reply) < 2 or reply[-2:] != OK:
        raise PhoneRefused("phone_refused")
    signature = reply[:-2]
    if len(signature) != SIGNATURE_BYTES:
        raise PhoneRefused("phone_bad_signature")
    return PhoneAnswer(public_key, challenge, signature)
