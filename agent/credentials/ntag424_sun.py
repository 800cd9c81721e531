"""NTAG 424 DNA Secure Dynamic Messaging (SUN) verification, AES mode.

A SUN card answers every read with a fresh message: PICCData (PICCDataTag, UID and the
24-bit read counter SDMReadCtr) encrypted with SDMMetaReadKey, and SDMMAC, a truncated
AES-CMAC made with a session key derived from the card's SDMFileReadKey. A copy of the
UID is worthless (the UID alone is not accepted where a gate requires secure cards), and
a recorded message is refused because its counter does not increase.

References (NXP AN12196 "NTAG 424 DNA and NTAG 424 DNA TagTamper features and hints"):
section 3.3 (SDM session key generation, SV2 = 3CC3 0001 0080 || UID || SDMReadCtr),
section 3.4.2 (PICCData decryption: AES-128-CBC with zero IV under SDMMetaReadKey),
section 3.4.4 (SDMMAC: CMAC over the MAC input window, truncated to the odd-indexed
bytes). Per-card keys are diversified as in NXP AN10922 section 2.2 (AES-128 CMAC
diversification) from a per-tenant master; see docs/security.md for why.

The counter check (``counter must increase per credential``) needs the store and lives
in agent/access/service.py; this module is pure.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from contracts.reasons import Reason

KEY_LEN = 16
PICC_ENC_LEN = 16  # AES mode; LRP mode (24 bytes) is not supported
SDMMAC_LEN = 8
UID_LEN = 7
_SV2_PREFIX = bytes.fromhex("3CC300010080")
_TAG_UID_MIRROR = 0x80
_TAG_CTR_MIRROR = 0x40
# AN10922 key numbers used in the diversification input: which card key it is
META_READ_KEY_NO = 1
FILE_READ_KEY_NO = 2


class SunRejected(Exception):
    """The SUN message does not verify; ``reason`` is what the gate reports."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SunMessage:
    """What a reader or an NDEF/QR URL delivered, still unverified."""

    picc_data: bytes  # 16 bytes of encrypted PICCData
    sdmmac: bytes  # 8 bytes
    # the bytes between SDMMACInputOffset and SDMMACOffset (empty in the usual layout
    # where the MAC covers nothing but the session key's UID and counter)
    mac_input: bytes = b""


@dataclass(frozen=True, slots=True)
class SunRead:
    """A verified SUN read: the card is genuine and said this counter."""

    uid: bytes  # 7 bytes
    counter: int  # SDMReadCtr, 0 .. 2**24 - 1

    @property
    def uid_hex(self) -> str:
        return self.uid.hex().upper()

    def __repr__(self) -> str:  # never print a UID, not even in a traceback
        return f"SunRead(counter={self.counter})"


def aes_cmac(key: bytes, data: bytes) -> bytes:
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def diversify_an10922(master: bytes, diversification_input: bytes) -> bytes:
    """AN10922 section 2.2 AES-128 key diversification: CMAC(K, 0x01 || M) with M padded
    to 32 bytes (0x80 00…, subkey K2) when shorter, K1 otherwise. For 16 <= len(M) <= 31
    that is exactly standard AES-CMAC of 0x01 || M, which is what we compute."""
    if len(master) != KEY_LEN:
        raise ValueError("AN10922 master key must be 16 bytes")
    if not 16 <= len(diversification_input) <= 31:
        raise ValueError("AN10922 diversification input must be 16-31 bytes here")
    return aes_cmac(master, b"\x01" + diversification_input)


def _system_identifier(tenant: str) -> bytes:
    # binds every card key to its tenant: the same UID in two tenants gets unrelated keys
    return hashlib.sha256(b"edge-suite sdm tenant:" + tenant.encode()).digest()[:8]


@dataclass(frozen=True, slots=True)
class SunKeys:
    """The SDM keys a verifier needs for one tenant.

    ``meta_read_key`` decrypts PICCData; it cannot be diversified per card because the
    UID is only known after decryption. ``file_master`` is the tenant's AN10922 master
    from which each card's SDMFileReadKey (the MAC key) is diversified with its UID.
    """

    tenant: str
    meta_read_key: bytes
    file_master: bytes

    def __post_init__(self) -> None:
        if len(self.meta_read_key) != KEY_LEN or len(self.file_master) != KEY_LEN:
            raise ValueError("SDM keys must be 16 bytes (AES-128)")

    def __repr__(self) -> str:
        return f"SunKeys(tenant={self.tenant!r})"

    @staticmethod
    def derive(tenant_secret: bytes, tenant: str) -> SunKeys:
        """Both keys from the tenant's credential secret (HMAC-SHA256 as a KDF with
        distinct labels), so a device needs no extra key file and holds nothing that
        works for another tenant. The bridge derives the same when it personalises cards."""
        def label(name: str) -> bytes:
            msg = f"edge-suite ntag424 {name} v1:{tenant}".encode()
            return hmac.new(tenant_secret, msg, hashlib.sha256).digest()[:KEY_LEN]

        return SunKeys(tenant, label("meta-read"), label("file-read-master"))

    def file_read_key(self, uid: bytes) -> bytes:
        """This card's SDMFileReadKey (card key 2): AN10922 with UID || key no || tenant."""
        return diversify_an10922(
            self.file_master, uid + bytes([FILE_READ_KEY_NO]) + _system_identifier(self.tenant)
        )


def session_mac_key(file_read_key: bytes, uid: bytes, counter_le: bytes) -> bytes:
    """KSesSDMFileReadMAC = CMAC(SDMFileReadKey, SV2) (AN12196 section 3.3)."""
    sv2 = _SV2_PREFIX + uid + counter_le
    return aes_cmac(file_read_key, sv2)


def sdmmac(session_key: bytes, mac_input: bytes) -> bytes:
    """SDMMAC: the full CMAC truncated to its bytes 1, 3, 5, …, 15."""
    return aes_cmac(session_key, mac_input)[1::2]


def decrypt_picc_data(meta_read_key: bytes, picc_enc: bytes) -> tuple[int, bytes, bytes]:
    """(PICCDataTag, UID, SDMReadCtr little-endian) from the encrypted PICCData."""
    decryptor = Cipher(algorithms.AES(meta_read_key), modes.CBC(b"\x00" * 16)).decryptor()
    plain = decryptor.update(picc_enc) + decryptor.finalize()
    return plain[0], plain[1:1 + UID_LEN], plain[1 + UID_LEN:4 + UID_LEN]


def verify_sun(message: SunMessage, keys: SunKeys) -> SunRead:
    """Decrypt and authenticate one SUN message with a tenant's keys; raises SunRejected."""
    return verify_sun_with(message, keys.meta_read_key, keys.file_read_key)


def verify_sun_with(message: SunMessage, meta_read_key: bytes,
                    file_read_key: Callable[[bytes], bytes]) -> SunRead:
    """The verification itself, with the card's SDMFileReadKey looked up by UID."""
    if len(message.picc_data) != PICC_ENC_LEN:
        raise SunRejected(Reason.MALFORMED_CREDENTIAL,
                          f"SUN PICCData of {len(message.picc_data)} bytes (AES mode has 16)")
    if len(message.sdmmac) != SDMMAC_LEN:
        raise SunRejected(Reason.MALFORMED_CREDENTIAL,
                          f"SUN SDMMAC of {len(message.sdmmac)} bytes (expected 8)")
    tag, uid, counter_le = decrypt_picc_data(meta_read_key, message.picc_data)
    tag_ok = (tag & _TAG_UID_MIRROR and tag & _TAG_CTR_MIRROR and tag & 0x0F == UID_LEN)
    if not tag_ok:
        # a wrong meta-read key decrypts to noise, and so does another tenant's card; still
        # spend the MAC work so timing does not say which check failed
        sdmmac(session_mac_key(file_read_key(b"\x00" * UID_LEN), b"\x00" * UID_LEN,
                               b"\x00" * 3), message.mac_input)
        raise SunRejected(Reason.BAD_SIGNATURE,
                          "SUN message does not decrypt with this tenant's key (another "
                          "tenant's card, or a card personalised without UID+counter mirror)")
    expected = sdmmac(session_mac_key(file_read_key(uid), uid, counter_le),
                      message.mac_input)
    if not hmac.compare_digest(expected, message.sdmmac):
        raise SunRejected(Reason.BAD_SIGNATURE, "SUN SDMMAC does not verify")
    return SunRead(uid=uid, counter=int.from_bytes(counter_le, "little"))


def emulate_sun(keys: SunKeys, uid: bytes, counter: int, mac_input: bytes = b"",
                file_read_key: bytes | None = None) -> SunMessage:
    """What a card personalised with these keys sends at read ``counter`` (tests, the
    simulator, and the bridge's personalisation self-check use it)."""
    if len(uid) != UID_LEN or not 0 <= counter < 1 << 24:
        raise ValueError("UID must be 7 bytes and the counter 24 bits")
    counter_le = counter.to_bytes(3, "little")
    plain = bytes([_TAG_UID_MIRROR | _TAG_CTR_MIRROR | UID_LEN]) + uid + counter_le
    plain += b"\x00" * (16 - len(plain))  # the card pads with random bytes; zeros do too
    encryptor = Cipher(algorithms.AES(keys.meta_read_key), modes.CBC(b"\x00" * 16)).encryptor()
    picc = encryptor.update(plain) + encryptor.finalize()
    key = file_read_key if file_read_key is not None else keys.file_read_key(uid)
    return SunMessage(picc, sdmmac(session_mac_key(key, uid, counter_le), mac_input), mac_input)
