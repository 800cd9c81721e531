"""What a buyer holds: the ticket's QR (PNG, segno), a printable A6 PDF (Pillow) and the
texts that describe it, in the reader's language (Slovenian by default)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import segno
from PIL import Image, ImageDraw, ImageFont

from contracts.i18n import N_, format_day, format_money, gettext, ngettext
from contracts.ticket_token import TicketKind

LOCAL_TZ = ZoneInfo("Europe/Ljubljana")
KIND_LABELS: dict[int, str] = {
    TicketKind.DAY_TICKET: N_("Day ticket"),
    TicketKind.ENTRY_VOUCHER: N_("Entry voucher"),
    TicketKind.VALUE_VOUCHER: N_("Gift voucher (value)"),
}
# fonts-dejavu-core (scripts/setup.sh): č, š and ž need a real TrueType font
_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_DPI = 300
_A6 = (1240, 1748)  # 105 x 148 mm at 300 dpi


def kind_label(kind: int) -> str:
    return gettext(KIND_LABELS.get(int(kind), N_("Ticket")))


def what_it_grants(row: dict[str, Any]) -> str:
    if int(row["kind"]) == TicketKind.VALUE_VOUCHER:
        return gettext("Value: %(amount)s") % {"amount": format_money(int(row["value_cents"]))}
    n = int(row["entries"])
    return ngettext("%(num)d entry", "%(num)d entries", n) % {"num": n}


def validity(row: dict[str, Any]) -> str:
    start = datetime.fromtimestamp(int(row["valid_from"]), UTC).astimezone(LOCAL_TZ).date()
    # valid_to is exclusive: the last day it is good for is the day before midnight
    end = datetime.fromtimestamp(int(row["valid_to"]) - 1, UTC).astimezone(LOCAL_TZ).date()
    return gettext("Valid from %(start)s to %(end)s") % {"start": format_day(start),
                                                        "end": format_day(end)}


def qr_png(code: str, scale: int = 6) -> bytes:
    """The code as a QR PNG: alphanumeric mode, error correction M (what gates read)."""
    out = io.BytesIO()
    segno.make(code, error="m", boost_error=False).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = _FONT_DIR / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    if path.exists():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def ticket_pdf(row: dict[str, Any], code: str, tenant_name: str) -> bytes:
    """A one-page A6 PDF: title, what it grants, validity, the QR and the short id."""
    page = Image.new("RGB", _A6, "white")
    draw = ImageDraw.Draw(page)
    y = 90
    for text, size, bold in ((tenant_name, 48, False), (kind_label(row["kind"]), 72, True),
                             (row.get("label") or "", 44, False),
                             (what_it_grants(row), 56, True), (validity(row), 40, False)):
        if text:
            draw.text((_A6[0] // 2, y), text, fill="black", font=_font(size, bold), anchor="mt")
            y += size + 40
    qr = segno.make(code, error="m", boost_error=False)
    scale = max(1, min(_A6[0] - 200, _A6[1] - y - 260) // qr.symbol_size(scale=1)[0])
    buf = io.BytesIO()
    qr.save(buf, kind="png", scale=scale, border=4)
    qr_img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    page.paste(qr_img, ((_A6[0] - qr_img.width) // 2, y))
    y += qr_img.height + 30
    draw.text((_A6[0] // 2, y), gettext("Ticket no. %(id)s") % {"id": short_id(row["id"])},
              fill="black", font=_font(36), anchor="mt")
    draw.text((_A6[0] // 2, y + 60), gettext("Show this code at the gate or the till."),
              fill="black", font=_font(36), anchor="mt")
    out = io.BytesIO()
    page.save(out, "PDF", resolution=_DPI)
    return out.getvalue()


def short_id(ticket_id: str) -> str:
    """What staff and buyers read out: the first 8 hex digits of the ticket id."""
    return ticket_id.replace("-", "")[:8].upper()
