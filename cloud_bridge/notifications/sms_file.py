"""An SMS "provider" that appends each message as one JSON line to a file: for tests,
demos and a site that forwards the file itself. The line is flushed and fsynced before
``send`` returns, so a message counted as sent is on disk."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cloud_bridge.notifications.channels import DeliveryDeferred


@dataclass(slots=True)
class FileSms:
    path: Path
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, recipient: str, text: str) -> None:
        line = json.dumps({"to": recipient, "text": text, "at_ms": int(time.time() * 1000)},
                          ensure_ascii=False) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise DeliveryDeferred(f"cannot write SMS file {self.path}: {exc.strerror}"
                                   ) from None
