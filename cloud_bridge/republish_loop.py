"""The thread body of a bridge publisher of retained state (membership versions, desired
device configs): everything again after each new broker connection and every
``full_refresh_s``, what changed every ``refresh_s``; a database fault retries in 1 s."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)


def run_republisher(stop: threading.Event, generation: Callable[[], int],
                    connected: threading.Event, refresh: Callable[[bool], object], *,
                    refresh_s: float, full_refresh_s: float = math.inf,
                    what: str) -> None:
    """``refresh(force)`` publishes what differs from the last publication (everything
    when ``force``); ``generation()`` changes with every new broker connection."""
    seen_generation = -1
    next_refresh = next_full = time.monotonic()
    while not stop.wait(0.2):
        if not connected.is_set():
            continue
        now = time.monotonic()
        current = generation()
        new_connection = current != seen_generation
        if not (new_connection or now >= next_refresh):
            continue
        full = new_connection or now >= next_full
        try:
            refresh(full)
        except SQLAlchemyError as exc:
            log.warning("%s not published (database: %s); retrying", what,
                        type(exc).__name__)
            next_refresh = now + 1.0
            continue
        seen_generation = current
        next_refresh = now + refresh_s
        if full:
            next_full = now + full_refresh_s
