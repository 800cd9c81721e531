"""Software releases (docs/technician.md, "Updates and rollback"): the manifest the bridge
signs with its release-signing key, and the offer it puts on a device's own topic.

The manifest names the version, every file of the wheel set with its SHA-256 and size,
the pip requirement to install and the oldest device-config schema the release reads. It
travels as a signed envelope (contracts/signed_envelope.py: the signature covers the
exact bytes), so the device trusts the release because of the signature and the hashes,
not because of where it downloaded the files from.

The offer (retained, on ``{base}/release``) only says "this version of this channel is
for you, here is its manifest": it is not signed, because nothing in it is trusted — a
forged offer can at most point the device at another *signed* release, and a device
moves to an older version only when the offer says ``rollback``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contracts import strict_json
from contracts.errors import BadInput, SignatureError
from contracts.signed_envelope import sign_payload, verify_envelope

# the device-config schema this code reads; a release needing a newer one is refused
CONFIG_SCHEMA_VERSION = 1
CHANNELS = ("stable", "beta")
MAX_MANIFEST_BYTES = 256 * 1024
MAX_OFFER_BYTES = 4 * 1024

_VERSION = re.compile(r"^\d+(\.\d+){0,3}$")
_FILE = re.compile(r"^[A-Za-z0-9_.+-]{1,200}\.whl$")

Channel = Literal["stable", "beta"]


def version_key(version: str) -> tuple[int, ...]:
    """'0.10.2' -> (0, 10, 2, 0): numeric, so 0.10 sorts after 0.9."""
    if not _VERSION.match(version):
        raise BadInput(f"version '{version}' is not N.N.N (digits and dots)")
    parts = tuple(int(p) for p in version.split("."))
    return parts + (0,) * (4 - len(parts))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReleaseFile(_Strict):
    name: str
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    size: Annotated[int, Field(ge=1, le=512 * 1024 * 1024)]

    @field_validator("name")
    @classmethod
    def _plain_wheel_name(cls, value: str) -> str:
        if not _FILE.match(value):  # no folders, no '..': it becomes a file name on the device
            raise ValueError(f"'{value}' is not a plain wheel file name")
        return value


class ReleaseManifest(_Strict):
    v: Literal[1] = 1
    kind: Literal["release"] = "release"
    product: str = "edge-suite"
    channel: Channel
    version: str
    requirement: str  # what pip installs from the wheel set, e.g. "edge-suite[device]==0.2.0"
    min_config_schema: Annotated[int, Field(ge=1)] = 1
    files: Annotated[list[ReleaseFile], Field(min_length=1, max_length=500)]
    created_ms: int

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        try:
            version_key(value)
        except BadInput as exc:
            raise ValueError(str(exc)) from None
        return value


class ReleaseOffer(_Strict):
    v: Literal[1] = 1
    channel: Channel
    version: str
    manifest_url: Annotated[str, Field(min_length=8, max_length=1000)]
    # the office rolled back: going to an older version is wanted, not a downgrade attack
    rollback: bool = False
    offered_ms: int


def sign_manifest(key: Ed25519PrivateKey, manifest: ReleaseManifest) -> bytes:
    return sign_payload(key, manifest.model_dump(mode="json"))


def open_manifest(message: bytes, key: Ed25519PublicKey) -> ReleaseManifest:
    """The verified manifest; SignatureError or BadInput, never unverified data."""
    if len(message) > MAX_MANIFEST_BYTES:
        raise BadInput(f"manifest of {len(message)} bytes is over {MAX_MANIFEST_BYTES}")
    try:
        raw = verify_envelope(message, key)
    except SignatureError:
        raise SignatureError("release manifest signature does not verify with the "
                             "release public key ([update] release_public_key)") from None
    try:
        return ReleaseManifest.model_validate(strict_json.loads(raw))
    except (strict_json.StrictJsonError, ValidationError) as exc:
        raise BadInput(f"release manifest refused: {str(exc).splitlines()[0]}") from None


def parse_offer(payload: bytes) -> ReleaseOffer:
    if len(payload) > MAX_OFFER_BYTES:
        raise BadInput(f"release offer of {len(payload)} bytes is over {MAX_OFFER_BYTES}")
    try:
        offer = ReleaseOffer.model_validate(strict_json.loads(payload))
    except (strict_json.StrictJsonError, ValidationError) as exc:
        raise BadInput(f"release offer refused: {str(exc).splitlines()[0]}") from None
    version_key(offer.version)
    return offer
