"""A drawn waiver signature (docs/waivers.md): the strokes a member drew on the kiosk's
or the phone's signature pad (cloud_bridge/web/static/signature_pad.js), as the ``d`` of
one SVG path in a 600 × 200 box: ``M x,y`` starts a stroke, ``L x,y`` continues it,
integers only. It is parsed strictly (nothing but those commands, coordinates inside the
box, bounded length, enough points to be more than a dot or a slip), so what is stored
and later shown is a drawing and never markup. Its SHA-256 is kept beside the hash of
the waiver's text."""

from __future__ import annotations

import hashlib
import re

from cloud_bridge.errors import Invalid

WIDTH, HEIGHT = 600, 200
MAX_CHARS = 20_000
MIN_POINTS = 8
_COMMAND = re.compile(r"([ML])(\d{1,3}),(\d{1,3})")


def check_drawing(path: str) -> str:
    """The path, normalised (single spaces); Invalid("drawing: ...") if it is not one."""
    if len(path) > MAX_CHARS:
        raise Invalid(f"drawing: at most {MAX_CHARS} characters")
    parts = path.split()
    if not parts or not parts[0].startswith("M"):
        raise Invalid("drawing: draw the signature")
    for part in parts:
        found = _COMMAND.fullmatch(part)
        if found is None:
            raise Invalid("drawing: not a signature drawing")
        if int(found.group(2)) > WIDTH or int(found.group(3)) > HEIGHT:
            raise Invalid("drawing: a point lies outside the pad")
    if len(parts) < MIN_POINTS:
        raise Invalid("drawing: too short to be a signature; draw it again")
    return " ".join(parts)


def drawing_hash(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()


def drawing_svg(path: str) -> str:
    """A standalone SVG of a checked drawing (for the staff page or an export)."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}">'
            f'<path d="{check_drawing(path)}" fill="none" stroke="#1d2330" '
            'stroke-width="3" stroke-linecap="round" stroke-linejoin="round"/></svg>')
