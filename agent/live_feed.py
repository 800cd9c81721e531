"""In-process fan-out of what the agent does (decisions, pulses, display texts) to
watchers such as ``edge-sim gate`` or a kiosk page. Slow watchers lose messages;
the gate never waits for them."""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Any

FeedItem = dict[str, Any]


class LiveFeed:
    def __init__(self, per_watcher: int = 1000) -> None:
        self._watchers: set[queue.Queue[FeedItem]] = set()
        self._lock = threading.Lock()
        self._per_watcher = per_watcher

    def subscribe(self) -> queue.Queue[FeedItem]:
        q: queue.Queue[FeedItem] = queue.Queue(self._per_watcher)
        with self._lock:
            self._watchers.add(q)
        return q

    def unsubscribe(self, q: queue.Queue[FeedItem]) -> None:
        with self._lock:
            self._watchers.discard(q)

    def publish(self, item: FeedItem) -> None:
        with self._lock:
            watchers = list(self._watchers)
        for q in watchers:
            with contextlib.suppress(queue.Full):
                q.put_nowait(item)
