"""Simulated printer: keeps jobs in memory, or writes each to ``sim:/some/dir`` as a file.

Option ``fail`` = true makes every job fail as if the printer were off, to exercise
retry paths.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from drivers.errors import PrinterError
from drivers.protocols import HealthState, PeripheralHealth, PrintJob


class SimPrinter:
    def __init__(self, printer_id: str, url: str, options: dict[str, Any]) -> None:
        self.id = printer_id
        self.url = url
        rest = url.partition(":")[2].removeprefix("//")
        self.directory = Path(rest) if rest else None
        self.fail = bool(options.get("fail", False))
        self.jobs: list[PrintJob] = []
        self._started = False

    def start(self) -> None:
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self._started = True

    def stop(self) -> None:
        self._started = False

    def print_job(self, job: PrintJob) -> None:
        if self.fail or not self._started:
            raise PrinterError(f"printer {self.id} is offline (simulated)")
        self.jobs.append(job)
        if self.directory is not None:
            target = self.directory / f"{job.job_id}.bin"
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(job.payload)
            os.replace(tmp, target)

    def health(self) -> PeripheralHealth:
        if self.fail:
            return PeripheralHealth(HealthState.DOWN, "simulated printer off")
        if not self._started:
            return PeripheralHealth(HealthState.DOWN, "not started")
        return PeripheralHealth.ok(f"simulated, {len(self.jobs)} jobs")
