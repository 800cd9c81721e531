"""The one ESC/POS renderer: every printed document (POS receipts, record cards, day
reports, member QR slips) is a sequence of blocks rendered here.

python-escpos' Dummy printer with a profile whose code page table has CP852 (ESC t 18),
so č š ž Č Š Ž print on every Epson-compatible printer. A QR code goes out either as a
raster image (GS v 0), which every ESC/POS printer prints alike, or through the printer's
own QR generator (GS ( k; smaller jobs, but missing on cheap 58 mm models).

:class:`Document` is the plain form (title, lines, optional QR) that record cards use;
the receipt layout (``agent/pos/layout.py``) builds its blocks itself.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from escpos.printer import Dummy

PROFILE = "TM-T88V"  # its code page table maps CP852 to 18
CODE_PAGE = "CP852"

Align = Literal["left", "center", "right"]


@dataclass(frozen=True, slots=True)
class Style:
    """A change of text style; only what is set (not None) is sent to the printer."""

    align: Align | None = None
    bold: bool | None = None
    double_height: bool | None = None
    normal_textsize: bool | None = None


@dataclass(frozen=True, slots=True)
class Text:
    """Lines printed as they are (already fitted to the paper width)."""

    lines: Sequence[str]


@dataclass(frozen=True, slots=True)
class QrCode:
    """python-escpos' QR code: an image of ``size`` dots per module, or the printer's
    own generator when ``native``."""

    data: str
    size: int = 6
    native: bool = False


@dataclass(frozen=True, slots=True)
class QrRaster:
    """A QR code of a fixed symbol (version, error level, mask) as a GS v 0 raster of
    4 dots per module; for codes a specification prescribes (the FURS receipt code)."""

    data: str
    version: int
    error: Literal["l", "m", "q", "h"] = "m"
    mask: int | None = None  # None: segno scores all eight masks
    quiet_modules: int = 4


@dataclass(frozen=True, slots=True)
class Cut:
    pass


Block = Style | Text | QrCode | QrRaster | Cut


def render(blocks: Sequence[Block]) -> bytes:
    """The blocks as ESC/POS bytes, after initialising the printer and selecting CP852."""
    p = Dummy(profile=PROFILE)
    p.hw("INIT")
    p.charcode(CODE_PAGE)
    for block in blocks:
        if isinstance(block, Style):
            p.set(align=block.align, bold=block.bold, double_height=block.double_height,
                  normal_textsize=block.normal_textsize)
        elif isinstance(block, Text):
            p.text("\n".join(block.lines) + "\n")
        elif isinstance(block, QrCode):
            p.qr(block.data, size=block.size, native=block.native, center=False)
        elif isinstance(block, QrRaster):
            p._raw(qr_raster(block))
        else:
            p.cut()
    return bytes(p.output)


def qr_raster(code: QrRaster) -> bytes:
    """GS v 0 raster of a QR code, 4 dots per module (one hex digit each)."""
    import segno  # only documents with a raster QR code need it (the [pos] extra)

    module_dots = 4
    qr = segno.make_qr(code.data, error=code.error, version=code.version, boost_error=False,
                       mask=code.mask)
    size = len(qr.matrix) + 2 * code.quiet_modules
    pad = "0" * code.quiet_modules
    odd = "0" if size % 2 else ""  # a whole number of bytes per raster row
    blank = bytes.fromhex("0" * size + odd) * module_dots
    out = bytearray(blank * code.quiet_modules)
    for row in qr.matrix:
        out += bytes.fromhex(pad + "".join("f" if m else "0" for m in row) + pad + odd) \
            * module_dots
    out += blank * code.quiet_modules
    width_bytes = (size + 1) // 2
    height = size * module_dots
    return (b"\x1dv0\x00" + bytes([width_bytes & 0xFF, width_bytes >> 8, height & 0xFF,
                                    height >> 8]) + bytes(out))


# -- plain documents ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Document:
    title: str
    lines: Sequence[str] = ()
    qr: str | None = None
    # characters per line: 32 on 58 mm paper, 48 on 80 mm (font A)
    width: int = 48
    cut: bool = True


def document_blocks(doc: Document, *, native_qr: bool = False, qr_size: int = 6
                    ) -> list[Block]:
    """Centred bold double-height title, wrapped lines, optional centred QR code, cut."""
    if not 16 <= doc.width <= 64:
        raise ValueError(f"width {doc.width} is not a receipt paper width (32 or 48 columns)")
    blocks: list[Block] = [
        Style(align="center", bold=True, double_height=True),
        Text(textwrap.wrap(doc.title, doc.width // 2) or [""]),
        Style(align="left", bold=False, normal_textsize=True),
    ]
    body: list[str] = []
    for line in doc.lines:
        # keep deliberate blank lines and rules; wrap long text at word boundaries
        body.extend(textwrap.wrap(line, doc.width) or [""])
    if body:
        blocks.append(Text(body))
    if doc.qr:
        blocks += [Style(align="center"), QrCode(doc.qr, qr_size, native_qr),
                   Style(align="left")]
    if doc.cut:
        blocks.append(Cut())
    return blocks


def render_document(doc: Document, *, native_qr: bool = False, qr_size: int = 6) -> bytes:
    """The document as ESC/POS bytes: initialise, CP852, then :func:`document_blocks`."""
    return render(document_blocks(doc, native_qr=native_qr, qr_size=qr_size))
