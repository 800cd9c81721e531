"""Staged rollout of a signed release to a simulated fleet: the time until every device
reports the new version, and how many rolled back — for a good release (target: none)
and for a broken one (target: all).

    PYTHONPATH=. .venv/bin/python bench/rollout_bench.py [--devices 100] [--share 0.1]
        [--confirm-timeout 30] [--json]

Real pieces: the project's wheel built three times with ``pip wheel`` (old, new, and a
build whose self-test tap fails), signed with a release key and served over HTTPS by
``cloud-bridge release serve``; its own Mosquitto; the fleet simulator's agents
(simulators/fleet.py, what ``edge-sim fleet`` runs) with the update extension of
simulators/fleet_updates.py: each device downloads and verifies the release itself,
switches its own ``current``, restarts, and is judged by the new build's own self-test
in a process of that build's environment. The offers go out through
cloud_bridge/releases/rollout.py: first ``--share`` of the fleet, then all of it. A
device "reports" a version in its retained state message, and an outcome as its
``device.update`` event, both read off the broker by a subscriber.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.update.install import install_release  # noqa: E402
from agent.update.layout import UpdateLayout  # noqa: E402
from cloud_bridge.releases.rollout import RolloutControl  # noqa: E402
from simulators.fleet import FleetSpec  # noqa: E402
from simulators.fleet_updates import FleetUpdateSpec, UpdatingFleet  # noqa: E402
from tests.mqtt_broker import Broker  # noqa: E402
from tests.update.release_kit import BROKEN, NEW, OLD, ReleaseKit, make_kit  # noqa: E402

TENANT = "t1"


class Watcher:
    """What the devices report on the broker: versions (retained state) and outcomes."""

    def __init__(self, port: int) -> None:
        self.versions: dict[str, str] = {}
        self.outcomes: dict[tuple[str, str], str] = {}  # (device, to-version) -> outcome
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(f"es/v1/{TENANT}/+/state", 1), (f"es/v1/{TENANT}/+/events", 1)])
        self.client.loop_start()

    def _on_message(self, _client: Any, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        device, kind = msg.topic.split("/")[3:5]
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        with self.lock:
            if kind == "state" and body.get("ts") and body.get("version"):
                self.versions[device] = body["version"]
            elif kind == "events":
                for event in body.get("events", []):
                    if event.get("type") == "device.update":
                        data = event["data"]
                        self.outcomes[(device, data["to"])] = data["outcome"]

    def count_version(self, version: str) -> int:
        with self.lock:
            return sum(1 for v in self.versions.values() if v == version)

    def count_outcomes(self, to: str, outcome: str | None = None) -> int:
        with self.lock:
            return sum(1 for (_, t), o in self.outcomes.items()
                       if t == to and (outcome is None or o == outcome))

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Publisher:
    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> Any:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        return info


def wait_for(check: Any, timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)
    return time.monotonic()


def seed_env(kit: ReleaseKit, workdir: Path, shared: Path) -> Path:
    layout = UpdateLayout(workdir / "seed")
    layout.root.mkdir(parents=True)
    layout.envs.symlink_to(shared)
    wheels = workdir / "seed-wheels"
    wheels.mkdir()
    shutil.copy(kit.wheels[OLD], wheels)
    return install_release(layout, kit.manifest(OLD), wheels, kit.deps)


def journals(fleet: UpdatingFleet, version: str) -> list[str]:
    """The decided outcomes of ``version`` in the devices' own update journals."""
    out: list[str] = []
    for device in fleet.devices:
        journal = device.layout.read_journal()
        if journal is not None and journal.to_version == version and journal.terminal:
            out.append(journal.state)
    return out


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    t = time.monotonic()
    kit = make_kit(workdir / "kit")
    build_s = time.monotonic() - t
    broker = Broker(workdir / "broker").start()
    shared = workdir / "envs"
    shared.mkdir()
    fleet = UpdatingFleet(
        FleetSpec(devices=args.devices, tenant=TENANT, host="127.0.0.1", port=broker.port,
                  workdir=workdir / "fleet", hmac_key=b"fleet-simulation-key-0123456789ab"),
        FleetUpdateSpec(release_public_key="base64:" + kit.public_key, ca_file=kit.server.ca,
                        dependency_site=kit.deps, shared_envs=shared,
                        confirm_timeout_s=args.confirm_timeout))
    fleet.prepare(seed_env(kit, workdir, shared))
    watcher = Watcher(broker.port)
    n = args.devices
    out: dict[str, Any] = {"devices": n, "share": args.share, "build_wheels_s": round(build_s, 1),
                           "confirm_timeout_s": args.confirm_timeout, "load_before": load()}
    try:
        fleet.start()
        wait_for(lambda: watcher.count_version(OLD) == n, 120, f"{n} devices reporting {OLD}")
        control = RolloutControl(kit.store.folder, Publisher(broker.port), kit.server.url)
        devices = sorted(fleet.versions())

        t0 = time.monotonic()
        control.start(TENANT, "stable", NEW, args.share, devices)
        stage = math.ceil(args.share * n)
        t_stage = wait_for(lambda: watcher.count_version(NEW) >= stage, 600,
                           f"{stage} devices reporting {NEW}")
        # the office widens once the first share has confirmed its health
        t_stage_ok = wait_for(lambda: watcher.count_outcomes(NEW, "confirmed") >= stage, 600,
                              f"{stage} devices confirming {NEW}")
        control.widen(TENANT, "stable", 1.0, devices)
        t_all = wait_for(lambda: watcher.count_version(NEW) == n, 900,
                         f"{n} devices reporting {NEW}")
        t_done = wait_for(lambda: watcher.count_outcomes(NEW) == n, 600,
                          f"{n} outcomes of {NEW}")
        out["good"] = {"version": NEW, "stage_devices": stage,
                       "stage_s": round(t_stage - t0, 1),
                       "stage_confirmed_s": round(t_stage_ok - t0, 1),
                       "all_s": round(t_all - t0, 1),
                       "all_confirmed_s": round(t_done - t0, 1),
                       "rolled_back": watcher.count_outcomes(NEW, "rolled_back"),
                       "confirmed": watcher.count_outcomes(NEW, "confirmed"),
                       "load_after": load()}

        t0 = time.monotonic()
        control.start(TENANT, "stable", BROKEN, 1.0, devices)
        # the devices' own journals decide; the broker shows what they reported of it
        t_decided = wait_for(lambda: len(journals(fleet, BROKEN)) == n, 900,
                             f"{n} journals deciding {BROKEN}")
        try:
            t_all = wait_for(lambda: watcher.count_outcomes(BROKEN) == n, 60,
                             f"{n} outcomes of {BROKEN}")
        except TimeoutError:
            t_all = float("nan")
        decided = journals(fleet, BROKEN)
        out["broken"] = {"version": BROKEN, "decided_s": round(t_decided - t0, 1),
                         "last_outcome_s": round(t_all - t0, 1),
                         "rolled_back_journals": sum(1 for s in decided if s == "rolled_back"),
                         "rolled_back": watcher.count_outcomes(BROKEN, "rolled_back"),
                         "confirmed": watcher.count_outcomes(BROKEN, "confirmed"),
                         "current_new": sum(1 for v in fleet.versions().values() if v == NEW),
                         "running_after": watcher.count_version(NEW), "load_after": load()}
    finally:
        watcher.stop()
        fleet.stop()
        kit.server.stop()
        broker.stop()
    return out


def main() -> None:
    faulthandler.register(signal.SIGUSR1)  # kill -USR1 <pid>: where each thread waits
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--share", type=float, default=0.1)
    parser.add_argument("--confirm-timeout", type=float, default=30.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="rollout-bench-"))
    # the fleet's hundred agents log to a file, not over the figures
    logging.basicConfig(filename=workdir / "fleet.log", level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result = run(args, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
        return
    good, broken = result["good"], result["broken"]
    print(f"rollout to {result['devices']} simulated devices (load before: "
          f"{result['load_before']}, 1/5/15 min; {os.cpu_count()} CPUs)")
    print(f"  good release {good['version']}: {good['stage_devices']} devices "
          f"({result['share']:.0%}) on it after {good['stage_s']} s, confirmed after "
          f"{good['stage_confirmed_s']} s; widened to all: all on it after "
          f"{good['all_s']} s, every outcome after {good['all_confirmed_s']} s; "
          f"rolled back {good['rolled_back']}, confirmed "
          f"{good['confirmed']} (load after: {good['load_after']})")
    print(f"  broken release {broken['version']}: every device decided after "
          f"{broken['decided_s']} s (confirmation deadline {result['confirm_timeout_s']} s): "
          f"rolled back {broken['rolled_back_journals']} by their journals, "
          f"{broken['current_new']} with current on {NEW}; reported on the broker: rolled back "
          f"{broken['rolled_back']}, confirmed {broken['confirmed']}, last after "
          f"{broken['last_outcome_s']} s; {broken['running_after']} report {NEW} "
          f"(load after: {broken['load_after']})")


if __name__ == "__main__":
    main()
