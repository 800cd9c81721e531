"""Camera QR reader on real video files with real QR codes: each code read once despite
many frames, hard frames (blur, rotation, low contrast) read, empty and noise frames
harmless, frames the decoder has no time for dropped and counted, end of file reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drivers.camera_qr_reader import CameraQrReader, FrameMailbox, HoldOff
from drivers.errors import BadPeripheralUrl
from drivers.protocols import HealthState
from drivers.registry import open_peripheral
from tests.drivers.qr_video import Scene, write_video
from tests.drivers.reader_helpers import Collector, wait_for, wait_health

SCENES = [
    Scene(None, 4, "noise"),
    Scene("MEMBER-0001", 6),
    Scene(None, 3),
    Scene("MEMBER-0001", 4),  # shown again within the hold-off: no second read
    Scene(None, 3, "noise"),
    Scene("https://gym.example/q/ŽIGA-42", 6, "blur"),
    Scene(None, 3),
    Scene("MEMBER-0003", 6, "rotate"),
    Scene("MEMBER-0004", 6, "low_contrast"),
    Scene(None, 3, "noise"),
    Scene("MEMBER-0005", 6, "small"),
    Scene(None, 4),
]
EXPECTED = ["MEMBER-0001", "https://gym.example/q/ŽIGA-42", "MEMBER-0003", "MEMBER-0004",
            "MEMBER-0005"]


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "codes.avi", SCENES)


def test_every_code_once_then_end_of_file(video: Path) -> None:
    reader = open_peripheral("reader", "cam", f"camera:file://{video}", {"loop": False})
    got = Collector()
    reader.start(got)
    try:
        wait_for(reader.idle, 20, "end of the file")
        wait_health(reader.health, HealthState.DEGRADED)
        assert got.values() == EXPECTED
        assert {r.kind for r in got.reads} == {"qr"}
        assert "end of file" in reader.health().detail
        assert reader.frames_captured == sum(s.frames for s in SCENES)
    finally:
        reader.stop()


def test_decoder_behind_drops_frames_not_queue(video: Path) -> None:
    # unpaced file: capture runs far ahead of zbar; the mailbox keeps only the newest frame
    reader = CameraQrReader("cam", f"camera:file://{video}",
                            {"loop": "false", "realtime": "false"})
    reader.start(Collector())
    try:
        wait_for(reader.idle, 20, "end of the file")
        dropped = dict(reader.health().dropped).get("decoder_behind", 0)
        assert dropped > 0
        assert reader.frames_decoded + dropped == reader.frames_captured
    finally:
        reader.stop()


def test_looping_file_keeps_reading_after_holdoff(video: Path) -> None:
    reader = CameraQrReader("cam", f"camera:file://{video}",
                            {"holdoff_ms": 100, "realtime": "false"})
    got = Collector()
    reader.start(got)
    try:
        wait_for(lambda: got.values().count("MEMBER-0001") >= 2, 20, "second loop")
        assert reader.health().state is HealthState.OK
    finally:
        reader.stop()


def test_missing_camera_is_down_and_bad_urls(tmp_path: Path) -> None:
    reader = CameraQrReader("cam", "camera:/dev/video99", {})
    reader.start(Collector())
    try:
        wait_for(lambda: "cannot open camera /dev/video99" in reader.health().detail, 5, "down")
        assert reader.health().state is HealthState.DOWN
    finally:
        reader.stop()
    for url in ("camera:", "camera:file://", "camera:rtsp://x"):
        with pytest.raises(BadPeripheralUrl):
            CameraQrReader("cam", url, {})
    with pytest.raises(BadPeripheralUrl, match="holdoff_ms"):
        CameraQrReader("cam", "camera:0", {"holdoff_ms": -1})


def test_mailbox_and_holdoff_units() -> None:
    box = FrameMailbox()
    a, b = np.zeros(1), np.ones(1)
    assert box.put(a, 1.0) is False
    assert box.put(b, 2.0) is True  # a was never taken: replaced, not queued
    item = box.take(0.1)
    assert item is not None and item[1] == 2.0
    assert box.take(0.01) is None
    h = HoldOff(3.0)
    assert h.fresh("X", 0.0) and not h.fresh("X", 2.9) and not h.fresh("X", 5.8)
    assert h.fresh("X", 9.0)  # out of view 3.2 s


def test_health_is_true_right_after_start(video: Path) -> None:
    reader = CameraQrReader("cam", f"camera:file://{video}", {})
    reader.start(Collector())
    try:
        assert reader.health().state is HealthState.OK
    finally:
        reader.stop()
