"""Lesson edits as the tablet app sends them."""

from __future__ import annotations

import base64
import io
import uuid
from typing import Any

from PIL import Image, ImageDraw


def signature_png(seed: int = 0) -> str:
    img = Image.new("RGB", (300, 100), "white")
    ImageDraw.Draw(img).line([(10, 80), (60 + seed, 20), (120, 70), (200, 30 + seed)],
                             fill="black", width=3)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def lesson(candidate_id: int, vehicle_id: int, **over: Any) -> dict[str, Any]:
    body = {"id": str(uuid.uuid4()), "candidate_id": candidate_id, "vehicle_id": vehicle_id,
            "started_at": "2026-12-02T07:00:00.000Z", "ended_at": "2026-12-02T08:30:00.000Z",
            "lesson_count": 2, "lesson_type": "promet", "km_start": 10_000, "km_end": 10_042,
            "remarks": "Vožnja skozi križišča", "signature": signature_png()}
    body.update(over)
    return body


def edit(lesson_body: dict[str, Any], base_version: int = 0, **over: Any) -> dict[str, Any]:
    return {"edit_id": str(uuid.uuid4()), "base_version": base_version,
            "edited_ms": 1_764_658_800_000, "lesson": {**lesson_body, **over}}
