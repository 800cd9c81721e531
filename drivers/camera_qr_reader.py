"""QR codes from a camera (or a video file), decoded with zbar (pyzbar), via OpenCV.

URLs::

    camera:/dev/video0                  a V4L2 camera (USB webcam; Pi camera via v4l2 shim)
    camera:0                            the same by index
    camera:file:///srv/test/codes.avi   a video file (tests, demos, recorded incidents)

Options: ``holdoff_ms`` (3000: the same code is not delivered again until it has been out
of view this long), ``width``/``height`` (640x480 asked of a camera), ``loop`` (files:
start over at the end, default true; false ends with health DEGRADED "end of file"),
``realtime`` (files: play at the file's frame rate like a camera would, default true).

Capture and decoding run in two threads joined by a one-frame mailbox: the decoder always
takes the newest frame, and frames it had no time for are dropped and counted
(``decoder_behind``) instead of queueing up latency.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import cv2
import numpy as np
from pyzbar import pyzbar

from drivers.errors import BadPeripheralUrl
from drivers.protocols import CardRead, HealthState, PeripheralHealth, ReadHandler
from drivers.reader_support import Backoff, ReaderHealth, deliver, option_bool, option_float

log = logging.getLogger(__name__)

# start() waits this long for the first open attempt (see ReaderHealth.begin)
_FIRST_OPEN_WAIT_S = 1.0

_QR_ONLY = [pyzbar.ZBarSymbol.QRCODE]
# OpenCV would print a warning to stderr on every reopen attempt of a missing camera;
# the reader's health detail already says it, once
with contextlib.suppress(AttributeError):
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
MAX_TEXT = 1024  # longer payloads are not credentials (read_parser refuses them too)


def decode_qr(gray: np.ndarray) -> list[str]:
    """Texts of the QR codes in a grayscale frame (UTF-8, Latin-1 as a fallback)."""
    texts = []
    for symbol in pyzbar.decode(gray, symbols=_QR_ONLY):
        try:
            texts.append(symbol.data.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(symbol.data.decode("latin-1"))
    return texts


def to_gray(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


class FrameMailbox:
    """One slot: ``put`` replaces an untaken frame (and says so), ``take`` waits for one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: tuple[np.ndarray, float] | None = None
        self._in_hand = False  # taken, decoder still working on it
        self._closed = False

    def put(self, frame: np.ndarray, seen_at: float) -> bool:
        """Returns True when an older frame was still waiting and got replaced."""
        with self._cond:
            replaced = self._frame is not None
            self._frame = (frame, seen_at)
            self._cond.notify()
            return replaced

    def take(self, timeout: float) -> tuple[np.ndarray, float] | None:
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._closed, timeout)
            item, self._frame = self._frame, None
            self._in_hand = item is not None
            return item

    def done(self) -> None:
        with self._cond:
            self._in_hand = False

    def pending(self) -> bool:
        """A frame is waiting or being decoded."""
        with self._cond:
            return self._frame is not None or self._in_hand

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class HoldOff:
    """The same text at most once until it has been out of view ``holdoff_s``."""

    def __init__(self, holdoff_s: float) -> None:
        self.holdoff_s = holdoff_s
        self._last_seen: dict[str, float] = {}

    def fresh(self, text: str, now: float) -> bool:
        last = self._last_seen.get(text)
        self._last_seen[text] = now
        if len(self._last_seen) > 256:
            self._last_seen = {t: s for t, s in self._last_seen.items()
                               if now - s < self.holdoff_s}
        return last is None or now - last >= self.holdoff_s


class CameraQrReader:
    def __init__(self, reader_id: str, url: str, options: dict[str, Any]) -> None:
        self.id = reader_id
        self.url = url
        source = url.partition(":")[2]
        self.is_file = source.startswith("file://")
        if self.is_file:
            self.source: str | int = source[len("file://"):]
            if not self.source:
                raise BadPeripheralUrl("camera:file:// needs a path, e.g. "
                                       "camera:file:///srv/codes.avi")
        elif source.isdigit():
            self.source = int(source)
        elif source.startswith("/dev/"):
            self.source = source
        else:
            raise BadPeripheralUrl(f"'{url}': expected camera:/dev/video0, camera:0 or "
                                   "camera:file:///path/video.avi")
        self.holdoff_s = option_float(options, "holdoff_ms", 3000, 0, 600_000) / 1000
        self.width = int(option_float(options, "width", 640, 160, 4096))
        self.height = int(option_float(options, "height", 480, 120, 4096))
        self.loop = option_bool(options, "loop", True)
        self.realtime = option_bool(options, "realtime", True)
        self._health = ReaderHealth(reader_id)
        self._stop = threading.Event()
        self._mailbox = FrameMailbox()
        self._threads: list[threading.Thread] = []
        self.frames_captured = 0
        self.frames_decoded = 0

    # -- lifecycle ---------------------------------------------------------------

    def start(self, on_read: ReadHandler) -> None:
        self._stop.clear()
        self._mailbox = FrameMailbox()
        self._threads = [
            threading.Thread(target=self._capture, name=f"reader-{self.id}-capture",
                             daemon=True),
            threading.Thread(target=self._decode, args=(on_read,),
                             name=f"reader-{self.id}-decode", daemon=True),
        ]

        def start_threads() -> None:
            for t in self._threads:
                t.start()

        self._health.begin(_FIRST_OPEN_WAIT_S, start_threads)

    def stop(self) -> None:
        self._stop.set()
        self._mailbox.close()
        for t in self._threads:
            t.join(5)
        self._threads = []
        self._health.set(HealthState.DOWN, "stopped", expected=True)

    def health(self) -> PeripheralHealth:
        return self._health.snapshot()

    def idle(self) -> bool:
        """For tests: capture finished (file at its end) and nothing is left to decode."""
        return not self._threads[0].is_alive() and not self._mailbox.pending()

    # -- capture thread -----------------------------------------------------------------

    def _open(self) -> cv2.VideoCapture:
        if self.is_file:
            cap = cv2.VideoCapture(str(self.source))
        else:
            cap = cv2.VideoCapture(self.source, cv2.CAP_V4L2)
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a stale queue
        return cap

    def _capture(self) -> None:
        backoff = Backoff(0.2, 5.0)
        what = f"video file {self.source}" if self.is_file else f"camera {self.source}"
        while not self._stop.is_set():
            cap = self._open()
            if not cap.isOpened():
                cap.release()
                hint = "check the path" if self.is_file else \
                    "check the USB cable and that the agent user is in the 'video' group"
                self._health.set(HealthState.DOWN, f"cannot open {what} — {hint}; retrying")
                self._stop.wait(backoff.next_delay())
                continue
            backoff.reset()
            self._health.set(HealthState.OK, f"capturing from {what}")
            try:
                ended = self._capture_frames(cap, what)
            except Exception:  # an OpenCV/driver error: reopen, never die
                log.exception("reader %s: capture from %s failed", self.id, what)
                ended = False
            finally:
                cap.release()
            if ended:
                return
            if not self._stop.is_set():
                self._health.set(HealthState.DOWN, f"{what} stopped delivering frames; reopening")
                self._stop.wait(backoff.next_delay())

    def _capture_frames(self, cap: cv2.VideoCapture, what: str) -> bool:
        """Read until stop (True), end of a non-looping file (True) or failure (False)."""
        fps = cap.get(cv2.CAP_PROP_FPS) if self.is_file else 0.0
        period = 1.0 / fps if self.realtime and 1 <= fps <= 240 else 0.0
        next_at = time.monotonic()
        while not self._stop.is_set():
            ok, frame = cap.read()
            if not ok or frame is None:
                if not self.is_file:
                    return False
                if self.loop and self.frames_captured:
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    continue
                self._health.set(HealthState.DEGRADED, f"end of file {self.source}")
                return True
            seen_at = time.monotonic()
            self.frames_captured += 1
            if self._mailbox.put(frame, seen_at):
                self._health.drop("decoder_behind")
            if period:  # a file plays at its own frame rate, like a camera
                next_at += period
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        return True

    # -- decode thread ------------------------------------------------------------------

    def _decode(self, on_read: ReadHandler) -> None:
        holdoff = HoldOff(self.holdoff_s)
        while not self._stop.is_set():
            item = self._mailbox.take(0.25)
            if item is None:
                continue
            try:
                self._decode_one(item, holdoff, on_read)
            finally:
                self._mailbox.done()

    def _decode_one(self, item: tuple[np.ndarray, float], holdoff: HoldOff,
                    on_read: ReadHandler) -> None:
        frame, seen_at = item
        try:
            texts = decode_qr(to_gray(frame))
        except Exception:  # a corrupt frame must not end decoding
            log.exception("reader %s: decoding a frame failed", self.id)
            self._health.drop("decode_error")
            return
        self.frames_decoded += 1
        for text in texts:
            if not text or len(text) > MAX_TEXT or not text.isprintable():
                self._health.drop("bad_format")
                continue
            if holdoff.fresh(text, seen_at):
                deliver(on_read, CardRead(self.id, "qr", text, seen_at))
