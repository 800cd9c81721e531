"""How the guard learns whether the new version is healthy.

- :class:`ConfirmFileProbe` (a real device): the restarted agent writes
  ``confirm-<version>.json`` from its own health loop once it has sent READY
  (agent/update/trial.py): alive means the self-test tap came back ``unknown_credential``
  through the real decision path and not every peripheral is down (agent/health.py).
- :class:`SelfTestProbe` (the simulated fleet, whose agents share one process): the new
  environment's own interpreter runs ``python -m agent.update selftest``, the same
  health evaluation on a daemon built from the device's config.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from agent.update.layout import UpdateLayout

SELFTEST_TIMEOUT_S = 60.0


class ConfirmFileProbe:
    def __init__(self, layout: UpdateLayout) -> None:
        self.layout = layout

    def check(self, version: str, since_ms: int) -> tuple[bool, str]:
        try:
            report = json.loads(self.layout.confirm_path(version).read_text())
        except (OSError, ValueError):
            return False, f"no health report from {version} yet"
        if int(report.get("at_ms", 0)) < since_ms or report.get("version") != version:
            return False, f"no health report from {version} since the switch"
        if report.get("alive"):
            return True, f"{version} ready and healthy (pid {report.get('pid')})"
        return False, "; ".join(report.get("failures") or ["unhealthy"])


class SelfTestProbe:
    def __init__(self, layout: UpdateLayout, config: Path) -> None:
        self.layout = layout
        self.config = config

    def check(self, version: str, since_ms: int) -> tuple[bool, str]:
        env = self.layout.current_env()
        if env is None or self.layout.version_of(env) != version:
            return False, f"current does not point at {version}"
        try:
            done = subprocess.run(
                [str(env / "bin" / "python"), "-m", "agent.update", "selftest", "-c",
                 str(self.config)], capture_output=True, text=True,
                timeout=SELFTEST_TIMEOUT_S, env={"PATH": "/usr/bin:/bin"}, check=False,
                cwd=self.layout.root)
        except subprocess.TimeoutExpired:
            return False, f"the self-test of {version} did not finish in {SELFTEST_TIMEOUT_S} s"
        try:
            report = json.loads(done.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            tail = " | ".join(done.stderr.strip().splitlines()[-2:])
            return False, f"the self-test of {version} crashed: {tail}"
        if report.get("version") != version:
            return False, f"the environment of {version} runs {report.get('version')}"
        if report.get("alive"):
            return True, f"{version} self-test passed"
        return False, "; ".join(report.get("failures") or ["unhealthy"])
