"""Time and peak memory of a streamed snapshot: N credentials (with their members and
entitlements) on SQLite, signed in chunks as the bridge sends them.

    .venv/bin/python bench/bridge_snapshot_bench.py [--credentials 1000000] [--db URL]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from cloud_bridge.db_schema import credentials, entitlements, make_engine, members, write_tx
from cloud_bridge.snapshot import snapshot_envelopes
from cloud_bridge.tenant_keys import TenantKeyStore, create_tenant


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--credentials", type=int, default=1_000_000)
    ap.add_argument("--db")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="snap-bench-") as tmp:
        engine = make_engine(args.db or f"sqlite:///{Path(tmp) / 'b.sqlite3'}")
        create_tenant(Path(tmp) / "keys", "snap")
        keys = TenantKeyStore(Path(tmp) / "keys").get("snap")
        n, step = args.credentials, 50_000
        t0 = time.perf_counter()
        for lo in range(0, n, step):
            ids = range(lo, min(n, lo + step))
            with write_tx(engine) as conn:
                conn.execute(insert(members), [
                    {"tenant": "snap", "id": f"m{i}", "first_name": "Ana", "last_name": "",
                     "blocked": False, "created_at": 0, "updated_at": 0} for i in ids])
                conn.execute(insert(credentials), [
                    {"tenant": "snap", "id": f"c{i}", "member_id": f"m{i}", "kind": "card",
                     "hash": f"{i:064x}", "blocked": False, "created_at": 0} for i in ids])
                conn.execute(insert(entitlements), [
                    {"tenant": "snap", "id": f"e{i}", "member_id": f"m{i}",
                     "kind": "membership", "valid_from": 0, "valid_to": 2_000_000_000,
                     "used_by_device": {}, "created_at": 0} for i in ids])
        load_s = time.perf_counter() - t0
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        chunks = size = 0
        for chunk in snapshot_envelopes(engine, keys):
            chunks += 1
            size += len(chunk.envelope)
        snap_s = time.perf_counter() - t0
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        engine.dispose()
    print(f"{n} members + credentials + entitlements (loaded in {load_s:.0f} s)")
    print(f"snapshot: {chunks} chunks, {size / 1e6:.0f} MB signed, {snap_s:.1f} s "
          f"({3 * n / snap_s:,.0f} rows/s); peak RSS {rss_before / 1024:.0f} -> "
          f"{rss_after / 1024:.0f} MB")


if __name__ == "__main__":
    main()
