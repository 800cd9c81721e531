"""Real video files with real QR codes (segno) for the camera reader's tests and the
bench: clean, blurred, rotated and low-contrast codes, empty frames and noise."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import segno

W, H = 640, 480
Effect = Literal["clean", "blur", "rotate", "low_contrast", "small"]


@dataclass(frozen=True, slots=True)
class Scene:
    text: str | None  # None: no code in these frames
    frames: int
    effect: Effect | Literal["blank", "noise"] = "clean"


def qr_image(text: str, module_px: int = 6, dark: int = 0, light: int = 255) -> np.ndarray:
    # non-ASCII text carries a UTF-8 ECI: without one zbar guesses the charset (often
    # Shift-JIS) and returns mojibake; docs/hardware.md says so for QR issuers
    qr = segno.make_qr(text, error="m", eci=not text.isascii())
    matrix = np.array(qr.matrix, dtype=np.uint8)
    matrix = np.pad(matrix, 4)  # quiet zone of 4 modules
    pixels = np.kron(matrix, np.ones((module_px, module_px), np.uint8))
    return np.where(pixels > 0, dark, light).astype(np.uint8)


def render(text: str | None, effect: str, rng: np.random.Generator) -> np.ndarray:
    """One 640x480 BGR frame."""
    if effect == "noise":
        return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    background = 200 if effect == "low_contrast" else 235
    frame = np.full((H, W), background, np.uint8)
    if text is not None and effect != "blank":
        if effect == "low_contrast":
            code = qr_image(text, 6, dark=120, light=185)
        else:
            code = qr_image(text, 4 if effect == "small" else 6)
        h, w = code.shape
        y, x = (H - h) // 2, (W - w) // 2
        frame[y:y + h, x:x + w] = code
        if effect == "rotate":
            m = cv2.getRotationMatrix2D((W / 2, H / 2), 33, 1.0)
            frame = cv2.warpAffine(frame, m, (W, H), borderValue=background)
        elif effect == "blur":
            frame = cv2.GaussianBlur(frame, (7, 7), 1.6)
    frame = cv2.add(frame, rng.integers(0, 12, frame.shape, dtype=np.uint8))  # sensor noise
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def write_video(path: Path, scenes: list[Scene], fps: float = 25.0, seed: int = 7) -> Path:
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write MJPG/AVI here")
    try:
        for scene in scenes:
            for _ in range(scene.frames):
                effect = scene.effect if scene.text is not None or scene.effect == "noise" \
                    else "blank"
                writer.write(render(scene.text, effect, rng))
    finally:
        writer.release()
    return path
