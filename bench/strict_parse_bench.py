"""Cost of the strict edge parse of an events message (issue 14): the previous parse
(pydantic straight from the JSON bytes, lenient about NaN) beside the strict one
(contracts/strict_json.py, then per-event validation in cloud_bridge.wire.split_events).

    .venv/bin/python bench/strict_parse_bench.py [--events 200] [--rounds 300]
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

from cloud_bridge.wire import EventBatch, split_events
from tests.bridge.device_emulator import batch_payload


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=300)
    args = ap.parse_args()
    data = {"gate": "g1", "member": "m1", "granted": True, "reason": "granted",
            "entitlement": "e1", "consumed": True, "note": "Žiga Čeh"}
    events = [{"id": str(uuid.uuid4()), "tenant": "t", "device": "d", "seq": s,
               "ts": "2026-11-24T19:06:38.195Z", "type": "access.decision", "data": data}
              for s in range(1, args.events + 1)]
    payload = batch_payload("t", "d", events)
    print(f"load: {os.getloadavg()}  batch: {args.events} events, {len(payload)} bytes")
    for name, parse in [("baseline model_validate_json", lambda: EventBatch.model_validate_json(
            payload)), ("strict split_events", lambda: split_events("t", "d", payload))]:
        parse()
        start = time.perf_counter()
        for _ in range(args.rounds):
            parse()
        per = (time.perf_counter() - start) / args.rounds
        print(f"{name:30s} {per * 1000:7.2f} ms/batch  {args.events / per:9.0f} events/s")


if __name__ == "__main__":
    main()
