"""Two bridge processes in one shared-subscription group split the load, and one can be
killed (SIGKILL) in the middle of a stream without losing or duplicating an event."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from cloud_bridge.db_schema import events
from tests.bridge.conftest import stop_process
from tests.bridge.device_emulator import DeviceEmulator

ROOT = Path(__file__).resolve().parents[2]


def start_bridge(db_url: str, keys_dir: Path, port: int, log: Path, name: str
                 ) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "cloud_bridge", "serve", "--db", db_url,
             "--mqtt-port", str(port), "--http-port", "0", "--keys-dir", str(keys_dir),
             "--client-id", name, "--stats-interval", "0.2"],
            cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def stored_by(log: Path) -> int:
    found = re.findall(r"events_stored=(\d+)", log.read_text(errors="replace"))
    return int(found[-1]) if found else 0


def wait_log(log: Path, needle: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while needle not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{needle!r} not in {log}:\n{log.read_text()}"
        time.sleep(0.05)


@pytest.mark.slow
def test_two_bridges_share_the_load_and_one_may_die(
        db_url: str, engine: Engine, keys_dir: Path, tenant: str, broker_port: int,
        tmp_path: Path) -> None:
    logs = [tmp_path / "bridge-a.log", tmp_path / "bridge-b.log"]
    procs = [start_bridge(db_url, keys_dir, broker_port, log, f"bridge-{n}")
             for log, n in zip(logs, "ab", strict=True)]
    try:
        for log in logs:
            wait_log(log, "connected to")
        devices = [DeviceEmulator(broker_port, tenant, f"gate-{i:02d}", ack_timeout_s=2.0)
                   for i in range(8)]
        total = 1500
        errors: list[BaseException] = []

        def run(dev: DeviceEmulator) -> None:
            try:
                dev.stream(total, batch=50, window=4, deadline_s=150)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(d,)) for d in devices]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while sum(d.acked for d in devices) < total * len(devices) // 4:
            assert time.monotonic() < deadline, "no progress before the kill"
            time.sleep(0.02)
        time.sleep(0.3)  # let bridge a log its figures
        stored_by_a = stored_by(logs[0])
        procs[0].send_signal(signal.SIGKILL)  # mid-stream, no goodbye
        procs[0].wait(10)
        for t in threads:
            t.join(170)
        assert not errors, errors
        assert all(d.acked == total for d in devices)
        time.sleep(0.5)
        assert stored_by_a > 0 and stored_by(logs[1]) > 0, "both bridges took a share"
        with engine.connect() as conn:
            rows = conn.execute(select(events.c.device, func.count(), func.min(events.c.seq),
                                       func.max(events.c.seq))
                                .where(events.c.tenant == tenant)
                                .group_by(events.c.device)).all()
        assert sorted(rows) == [(f"gate-{i:02d}", total, 1, total) for i in range(8)]
        for d in devices:
            d.close()
    finally:
        for p in procs:
            stop_process(p)
