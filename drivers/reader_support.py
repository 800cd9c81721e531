"""Pieces every hardware reader back-end shares: its health with counted drops, the
reconnect back-off, and handing a read to the core without letting the core's failure
kill the reader thread."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import parse_qsl

from drivers.errors import BadPeripheralUrl
from drivers.protocols import CardRead, HealthState, PeripheralHealth, ReadHandler

# re-exported: the reader back-ends import them from here
from drivers.url_options import option_bool as option_bool
from drivers.url_options import option_float as option_float

log = logging.getLogger(__name__)


class ReaderHealth:
    """Thread-safe health of one reader: state, detail and counted drop reasons."""

    def __init__(self, reader_id: str, detail: str = "not started") -> None:
        self.reader_id = reader_id
        self._lock = threading.Lock()
        self._state = HealthState.DOWN
        self._detail = detail
        self._dropped: Counter[str] = Counter()
        self._settled = threading.Event()

    def begin(self, first_wait_s: float, start: Callable[[], None]) -> None:
        """Start the reader's thread and wait (bounded) for its first open attempt, so
        health() right after start() tells the truth (``edge-agent doctor`` reads it at
        once) instead of "starting"."""
        self._settled.clear()
        self.set(HealthState.DOWN, "starting", expected=True)
        self._settled.clear()
        start()
        self._settled.wait(first_wait_s)

    def set(self, state: HealthState, detail: str, expected: bool = False) -> None:
        """``expected``: a state the agent asked for (stopped), logged as info."""
        with self._lock:
            changed = (state, detail) != (self._state, self._detail)
            self._state, self._detail = state, detail
        self._settled.set()
        if changed:
            level = logging.INFO if state is HealthState.OK or expected else logging.WARNING
            log.log(level, "reader %s %s: %s", self.reader_id, state.value, detail)

    def drop(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self._dropped[reason] += count

    def dropped(self, reason: str) -> int:
        with self._lock:
            return self._dropped[reason]

    @property
    def state(self) -> HealthState:
        with self._lock:
            return self._state

    def snapshot(self) -> PeripheralHealth:
        with self._lock:
            return PeripheralHealth(self._state, self._detail,
                                    tuple(sorted(self._dropped.items())))


class Backoff:
    """Exponential reconnect delay: quick retries after a glitch, no busy loop while a
    reader stays unplugged."""

    def __init__(self, initial_s: float = 0.1, maximum_s: float = 5.0) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self._next = initial_s

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self.maximum_s, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self.initial_s


def deliver(on_read: ReadHandler, read: CardRead) -> None:
    """Hand one read to the core. A failure there is logged (never the value: UIDs are
    not logged) and the reader keeps running."""
    try:
        on_read(read)
    except Exception:
        log.exception("reader %s: handling a %s read failed", read.reader_id, read.kind)


def split_query(rest: str) -> tuple[str, dict[str, str]]:
    """'path?a=1&b=2' -> ('path', {'a': '1', 'b': '2'})."""
    base, _, query = rest.partition("?")
    try:
        params = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError as exc:
        raise BadPeripheralUrl(f"bad query '{query}': {exc}") from exc
    return base, params


class PresenceDebouncer:
    """One read per presentation of a card that stays on the reader.

    ``seen(uid)`` is called for every successful poll and returns True only when the card
    just arrived; a card counts as removed after ``absent_after_s`` without a successful
    poll, and the same card is delivered again only ``holdoff_s`` after its removal (a
    card held at the edge of the field flickers in and out)."""

    def __init__(self, absent_after_s: float, holdoff_s: float) -> None:
        self.absent_after_s = absent_after_s
        self.holdoff_s = holdoff_s
        self._present: str | None = None
        self._last_seen = 0.0
        self._removed: dict[str, float] = {}

    def _expire(self, now: float) -> None:
        if self._present is not None and now - self._last_seen >= self.absent_after_s:
            self._removed[self._present] = self._last_seen
            self._present = None
        if len(self._removed) > 64:  # forget old cards; keeps the map small
            cutoff = now - self.holdoff_s
            self._removed = {u: t for u, t in self._removed.items() if t > cutoff}

    def seen(self, uid: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self._expire(now)
        if self._present == uid:
            self._last_seen = now
            return False
        if self._present is not None:  # another card replaced it without a gap
            self._removed[self._present] = self._last_seen
        self._present, self._last_seen = uid, now
        removed_at = self._removed.get(uid)
        return removed_at is None or now - removed_at >= self.holdoff_s

    def nothing(self, now: float | None = None) -> None:
        self._expire(time.monotonic() if now is None else now)

    def removed(self, now: float | None = None) -> None:
        """The back-end knows for sure the card left (PC/SC remove event)."""
        now = time.monotonic() if now is None else now
        if self._present is not None:
            self._removed[self._present] = now
            self._present = None


class PollingReader:
    """start/stop/health of a reader that works in one thread of its own; subclasses set
    ``id``, ``_health``, ``_stop`` and ``_thread`` in their constructor and write
    ``_run(on_read)``, which returns when ``_stop`` is set."""

    id: str
    _health: ReaderHealth
    _stop: threading.Event
    _thread: threading.Thread | None
    # start() waits this long for the first open attempt, so a health read right after
    # start (edge-agent doctor) shows the real state
    first_open_wait_s = 1.0

    def start(self, on_read: ReadHandler) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(on_read,),
                                        name=f"reader-{self.id}", daemon=True)
        self._health.begin(self.first_open_wait_s, self._thread.start)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            # a poll may wait up to 1 s for an answer (nfcpy's simulated transport)
            self._thread.join(5)
            self._thread = None
        self._health.set(HealthState.DOWN, "stopped", expected=True)

    def health(self) -> PeripheralHealth:
        return self._health.snapshot()

    def _run(self, on_read: ReadHandler) -> None:
        raise NotImplementedError

