"""systemd integration: READY/STATUS/STOPPING notifications and the watchdog loop.

The loop evaluates :class:`agent.health.AgentHealth` every half watchdog interval and
sends ``WATCHDOG=1`` only while the agent is alive (agent/health.py defines "alive"). A
hung decision path therefore stops the pings and systemd restarts the service
(``WatchdogSec=`` in systemd/edge-agent.service). Outside systemd (no NOTIFY_SOCKET) the
same loop still runs, so ``/healthz`` has fresh results.

``Notifier`` and ``Watchdog`` do not depend on the agent: the bridge can use them with
a health callable of its own.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from agent.daemon_ports import DecisionPath
from agent.health import HealthReport

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 5.0
# Test-only fault injection (tests/device/test_systemd.py): with this set to "1" the agent
# hangs its decision path on SIGUSR2. Refused under systemd (INVOCATION_ID is set for every
# service), and the unit also clears it (UnsetEnvironment=); no config key enables it.
FAULT_ENV = "EDGE_AGENT_FAULT_INJECTION"


class Notifier:
    """sd_notify through the ``sdnotify`` library; a no-op when not run by systemd."""

    def __init__(self) -> None:
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self._n: Any = None
        if self.enabled:
            # imported only under systemd: the [device] extra provides it
            import sdnotify

            self._n = sdnotify.SystemdNotifier()

    def send(self, *lines: str) -> None:
        if self._n is not None:
            self._n.notify("\n".join(lines))

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def ping(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    @staticmethod
    def watchdog_interval_s() -> float | None:
        """Half of WATCHDOG_USEC (as sd_watchdog_enabled(3) advises), or None."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            return max(int(usec) / 1e6 / 2, 0.05)
        except ValueError:
            return None


class Watchdog:
    def __init__(self, evaluate: Callable[[], HealthReport], notifier: Notifier,
                 interval_s: float | None = None) -> None:
        self.evaluate = evaluate
        self.notifier = notifier
        self.systemd_interval = notifier.watchdog_interval_s()
        self.interval_s = interval_s or self.systemd_interval or DEFAULT_INTERVAL_S
        self.last: HealthReport | None = None
        self.pings = 0
        self._failing = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)

    def start(self) -> None:
        if self.systemd_interval:
            log.info("systemd watchdog enabled: checking every %.1f s", self.interval_s)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def tick(self) -> HealthReport:
        report = self.evaluate()
        self.last = report
        if report.alive:
            if self.systemd_interval:
                self.notifier.ping()
                self.pings += 1
            if self._failing:
                log.warning("agent healthy again")
                self.notifier.status("running")
            self._failing = False
        else:
            why = "; ".join(report.failures())
            if not self._failing:
                log.error("agent not healthy, watchdog pings withheld: %s", why)
            self.notifier.status(f"unhealthy: {why}")
            self._failing = True
        return report

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("health evaluation failed; no watchdog ping")
            self._stop.wait(self.interval_s)


def install_fault_injection(daemon: DecisionPath) -> bool:
    """Test-only: SIGUSR2 hangs the decision path (holds the group committer forever)."""
    if os.environ.get(FAULT_ENV) != "1":
        return False
    if os.environ.get("INVOCATION_ID"):
        log.error("%s is ignored when running as a systemd service", FAULT_ENV)
        return False
    forever = threading.Event()

    def hang() -> None:
        daemon.access.committer.run(lambda _conn: forever.wait())

    def on_signal(_sig: int, _frame: Any) -> None:
        log.warning("fault injection: hanging the decision path")
        threading.Thread(target=hang, name="fault-hang", daemon=True).start()

    signal.signal(signal.SIGUSR2, on_signal)
    log.warning("fault injection enabled (%s=1): test use only", FAULT_ENV)
    return True
