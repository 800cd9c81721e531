"""The tamper-evident chain of punch records (ZEPDSV: records that cannot be changed
without a trace).

Each punch event carries the hash of the previous punch of this device; every so often
the head of the chain is signed with the device key. The same definition verifies the
chain in the bridge, so it lives here once.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

GENESIS = "0" * 64
PUNCH_EVENT = "attendance.punch"
HEAD_EVENT = "attendance.chain_head"


def punch_hash(prev_hash: str, event: dict[str, Any]) -> str:
    """sha256(prev hash bytes + canonical JSON of {device, seq, ts, type, data - hash})."""
    data = {k: v for k, v in event["data"].items() if k != "hash"}
    record = {"device": event["device"], "seq": event["seq"], "ts": event["ts"],
              "type": event["type"], "data": data}
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False).encode()
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical).hexdigest()


def sign_head(key: Ed25519PrivateKey, head_hash: str) -> str:
    return base64.b64encode(key.sign(bytes.fromhex(head_hash))).decode()


@dataclass(frozen=True, slots=True)
class ChainReport:
    ok: bool
    punches: int
    signed_heads: int
    # the first problem, in words a person can act on, with the seq where it is
    first_break: str | None = None
    break_seq: int | None = None


def verify_chain(events: list[dict[str, Any]], public_key: Ed25519PublicKey | None,
                 contiguous: bool = True) -> ChainReport:
    """Check the punch chain of one device from its events in seq order (other event
    types are skipped). With ``contiguous`` the events must be all of the device's, from
    its first: then a missing seq of any type is reported too (the bridge stores every
    seq exactly once, so a hole is a deletion)."""
    prev = GENESIS
    prev_seq = 0
    punches = heads = 0
    hashes: dict[int, str] = {}
    for ev in events:
        if ev["seq"] <= prev_seq:
            return ChainReport(False, punches, heads,
                               f"seq {ev['seq']} comes after seq {prev_seq}: records reordered",
                               ev["seq"])
        if contiguous and ev["seq"] != prev_seq + 1:
            return ChainReport(False, punches, heads,
                               f"seq {prev_seq + 1} is missing: a record was deleted",
                               prev_seq + 1)
        prev_seq = ev["seq"]
        if ev["type"] == PUNCH_EVENT:
            data = ev["data"]
            if data.get("prev_hash") != prev:
                return ChainReport(False, punches, heads,
                                   f"punch seq {ev['seq']} does not follow the previous punch "
                                   "(a record before it was deleted, replaced or reordered)",
                                   ev["seq"])
            expected = punch_hash(prev, ev)
            if data.get("hash") != expected:
                return ChainReport(False, punches, heads,
                                   f"punch seq {ev['seq']} was altered after it was recorded",
                                   ev["seq"])
            prev = expected
            hashes[ev["seq"]] = expected
            punches += 1
        elif ev["type"] == HEAD_EVENT:
            data = ev["data"]
            if hashes.get(data.get("punch_seq", -1)) != data.get("hash"):
                return ChainReport(False, punches, heads,
                                   f"signed head seq {ev['seq']} names a punch hash that is not "
                                   "in the chain", ev["seq"])
            if public_key is not None:
                try:
                    public_key.verify(base64.b64decode(data.get("sig", "")),
                                      bytes.fromhex(data["hash"]))
                except (InvalidSignature, ValueError):
                    return ChainReport(False, punches, heads,
                                       f"signed head seq {ev['seq']} has a forged signature",
                                       ev["seq"])
            heads += 1
    return ChainReport(True, punches, heads)
