"""Plain documents (record cards, day reports, member QR slips) as ESC/POS bytes.

Same approach as the receipts (agent/pos/layout.py): python-escpos' Dummy printer with a
profile whose code page table has CP852 (ESC t 18), so č š ž Č Š Ž print on every
Epson-compatible printer; the QR code goes out as a raster image (GS v 0), which every
ESC/POS printer prints alike, unless ``native_qr`` asks for the printer's own QR
generator (GS ( k; smaller jobs, but missing on cheap 58 mm models).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from escpos.printer import Dummy

PROFILE = "TM-T88V"  # its code page table maps CP852 to 18
CODE_PAGE = "CP852"


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    lines: Sequence[str] = ()
    qr: str | None = None
    # characters per line: 32 on 58 mm paper, 48 on 80 mm (font A)
    width: int = 48
    cut: bool = True


def render_document(doc: Document, *, native_qr: bool = False, qr_size: int = 6) -> bytes:
    """The document as ESC/POS bytes: initialise, CP852, centred bold title, wrapped lines,
    optional centred QR code, feed and cut."""
    if not 16 <= doc.width <= 64:
        raise ValueError(f"width {doc.width} is not a receipt paper width (32 or 48 columns)")
    p = Dummy(profile=PROFILE)
    p.hw("INIT")
    p.charcode(CODE_PAGE)
    p.set(align="center", bold=True, double_height=True)
    p.text("\n".join(textwrap.wrap(doc.title, doc.width // 2) or [""]) + "\n")
    p.set(align="left", bold=False, normal_textsize=True)
    body: list[str] = []
    for line in doc.lines:
        # keep deliberate blank lines and rules; wrap long text at word boundaries
        body.extend(textwrap.wrap(line, doc.width) or [""])
    if body:
        p.text("\n".join(body) + "\n")
    if doc.qr:
        p.set(align="center")
        p.qr(doc.qr, size=qr_size, native=native_qr, center=False)
        p.set(align="left")
    if doc.cut:
        p.cut()
    return bytes(p.output)
