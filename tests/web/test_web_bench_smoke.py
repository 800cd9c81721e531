"""bench/web_bench.py itself, at a tiny size, so the benchmark cannot rot: wrk logs in
through the Lua script, every route answers with its page, and the report has the
server's time from Server-Timing for each route. One web worker: several workers
are tested in tests/bridge/test_web_workers.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROUTES = ("baseline /healthz", "live entries page", "live entries, one site",
          "member search (prefix, pages 1–3)")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (setup.sh)")
def test_web_bench_runs_at_tiny_size() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "web_bench.py"), "--members", "50",
         "--events", "200", "--duration", "1", "--warmup", "1", "--solo", "1",
         "--connections", "4", "--threads", "1", "--only", "sqlite", "--workers", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = [line.split(" | ") for line in run.stdout.splitlines()
            if line.startswith("| SQLite | ")]
    assert sorted((r[1], r[2]) for r in rows) == sorted(
        (w, route) for w in ("1",) for route in ROUTES)
    for row in rows:
        requests_per_s, server_p50, errors = float(row[3]), float(row[7]), row[10]
        assert requests_per_s > 0 and server_p50 > 0 and errors == "0", row
