"""Named points where a test can have the agent SIGKILL itself (fault injection).

``EDGE_AGENT_FAULT=snapshot.index:3`` makes the third pass through the point
``snapshot.index`` send SIGKILL to this very process: a real kill -9 at an exact
instruction, which a test cannot hit reliably from outside by timing alone. Unset (the
only state in production) a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "EDGE_AGENT_FAULT"

_lock = threading.Lock()
_hits: dict[str, int] = {}


def _target() -> tuple[str, int] | None:
    raw = os.environ.get(ENV, "")
    if not raw:
        return None
    name, _, count = raw.partition(":")
    return name, int(count or "1")


_TARGET = _target()


def reached(point: str) -> None:
    """Count a pass through ``point``; SIGKILL this process if the test asked for it."""
    if _TARGET is None or _TARGET[0] != point:
        return
    with _lock:
        _hits[point] = _hits.get(point, 0) + 1
        if _hits[point] == _TARGET[1]:
            os.kill(os.getpid(), signal.SIGKILL)
