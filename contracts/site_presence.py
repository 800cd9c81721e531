"""A presence change one device of a site tells the others (docs/multi_gate.md).

Signed with an HMAC key derived from the tenant's credential key, which every device of
the tenant holds and no other machine on the site LAN does: a laptop on the gym's Wi-Fi
cannot mark a member "out" to let a passed-back card in. The member id is the bridge's
opaque id (no name, no card UID).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

from contracts.errors import ContractError

_LABEL = b"edge-suite site presence v1"


class BadPresenceFact(ContractError):
    """A presence message that is malformed or not signed by a device of the tenant."""


def presence_key(credential_hmac_key: bytes, tenant: str) -> bytes:
    return hmac.new(credential_hmac_key, _LABEL + b"\0" + tenant.encode(), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class PresenceFact:
    """``member`` passed ``gate`` of ``device`` in ``direction`` at ``at_ms`` (epoch ms);
    direction "gone" withdraws an entry nobody walked through (passage missed)."""

    device: str
    gate: str
    member: str
    direction: str  # "in" / "out" / "gone"
    at_ms: int

    def encode(self, key: bytes) -> bytes:
        body = json.dumps({"device": self.device, "gate": self.gate, "member": self.member,
                           "direction": self.direction, "at_ms": self.at_ms},
                          separators=(",", ":"), sort_keys=True)
        mac = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
        return json.dumps({"v": 1, "fact": body, "mac": mac}, separators=(",", ":")).encode()


def decode_fact(payload: bytes, key: bytes) -> PresenceFact:
    try:
        outer = json.loads(payload)
        body, mac = outer["fact"], outer["mac"]
        if outer["v"] != 1 or not isinstance(body, str) or not isinstance(mac, str):
            raise TypeError
    except (ValueError, KeyError, TypeError) as exc:
        raise BadPresenceFact("not a presence message") from exc
    want = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, mac):
        raise BadPresenceFact("presence message not signed by a device of this tenant")
    data = json.loads(body)
    try:
        fact = PresenceFact(str(data["device"]), str(data["gate"]), str(data["member"]),
                            str(data["direction"]), int(data["at_ms"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadPresenceFact("presence message lacks a field") from exc
    if fact.direction not in ("in", "out", "gone"):
        raise BadPresenceFact(f"unknown direction '{fact.direction}'")
    return fact
