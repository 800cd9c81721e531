"""A virtual ESC/POS network printer (TCP 9100) that shows what a real one would print.

It decodes the byte stream the way an Epson-compatible printer does: text in the code
page selected with ESC t (CP437, CP850, CP852, CP858, CP1252, CP866 …), alignment and
character size kept per line, bold marked in the picture only, GS v 0 raster images,
GS ( k QR codes (rendered with the ``qrcode`` library python-escpos depends on), and a cut
(GS V, ESC i/m) ending one receipt. Real-time status requests (DLE EOT n) are answered at
once, as a printer does on reception, from the simulated state (offline, paper end, paper
near end, cover open) that a test or ``edge-sim printer --paper-out`` sets.

Like a real printer it serves one TCP client at a time; the next waits in the backlog.
Each receipt is written as ``receipt-NNNN.txt`` and ``receipt-NNNN.png`` (text lines and
images drawn at 203 dpi, 576 dots for 80 mm paper or 384 for 58 mm).

    vp = VirtualPrinter("127.0.0.1", 0, out_dir)
    port = vp.start()
    ... vp.wait_for(1); vp.receipts[0].lines ...
    vp.stop()
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

CODE_PAGES = {0: "cp437", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865", 16: "cp1252",
              17: "cp866", 18: "cp852", 19: "cp858"}
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu",)
DOT_WIDTH = {80: 576, 58: 384}
CHAR_W, LINE_H = 12, 24  # font A: 12 x 24 dots


class _NeedMore(Exception):
    """The command at hand is not complete in the buffer yet."""


@dataclass(frozen=True, slots=True)
class PrinterState:
    offline: bool = False
    paper_end: bool = False
    paper_near_end: bool = False
    cover_open: bool = False

    def status_byte(self, n: int) -> int:
        """Answer to DLE EOT n (Epson reference: fixed bits 1 and 4 set)."""
        byte = 0x12
        stopped = self.offline or self.paper_end or self.cover_open
        if n == 1 and stopped:
            byte |= 0x08
        elif n == 2:
            byte |= (0x04 if self.cover_open else 0) | (0x20 if self.paper_end else 0)
        elif n == 4:
            byte |= (0x0C if self.paper_near_end or self.paper_end else 0) | \
                (0x60 if self.paper_end else 0)
        return byte


@dataclass(frozen=True, slots=True)
class TextLine:
    text: str
    align: str = "left"
    bold: bool = False
    width_mul: int = 1
    height_mul: int = 1


@dataclass(frozen=True, slots=True)
class RasterImage:
    image: Image.Image
    align: str = "left"
    source: str = "GS v 0"
    qr_data: str | None = None  # known for GS ( k codes


Block = TextLine | RasterImage


@dataclass(frozen=True, slots=True)
class VirtualReceipt:
    index: int
    lines: tuple[str, ...]
    qr: tuple[str, ...]
    images: int
    cut: bool
    code_pages: tuple[str, ...]
    notes: tuple[str, ...]
    txt_path: Path | None = None
    png_path: Path | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def as_json(self) -> dict[str, Any]:
        return {"receipt": self.index, "text": self.text, "lines": list(self.lines),
                "qr": list(self.qr), "images": self.images, "cut": self.cut,
                "code_pages": list(self.code_pages), "notes": list(self.notes),
                "txt": str(self.txt_path) if self.txt_path else None,
                "png": str(self.png_path) if self.png_path else None}


@dataclass
class _Style:
    code_page: int = 0
    align: str = "left"
    bold: bool = False
    width_mul: int = 1
    height_mul: int = 1


@dataclass
class _Page:
    blocks: list[Block] = field(default_factory=list)
    code_pages: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_ALIGN = {0: "left", 48: "left", 1: "center", 49: "center", 2: "right", 50: "right"}
# parameter bytes of the commands that are only skipped (or kept as style)
_ESC_ARGS = {ord(c): n for c, n in (("@", 0), ("2", 0), ("<", 0), ("!", 1), ("-", 1),
                                    ("3", 1), ("a", 1), ("E", 1), ("G", 1), ("M", 1),
                                    ("R", 1), ("t", 1), ("V", 1), ("{", 1), (" ", 1),
                                    ("d", 1), ("J", 1), ("e", 1), ("r", 1), ("U", 1),
                                    ("=", 1), ("%", 1), ("S", 0), ("L", 0), ("T", 1),
                                    ("W", 8), ("$", 2), ("\\", 2), ("p", 3), ("?", 1),
                                    ("i", 0), ("m", 0), ("c", 2))}
_GS_ARGS = {ord(c): n for c, n in (("!", 1), ("B", 1), ("H", 1), ("f", 1), ("h", 1),
                                   ("w", 1), ("b", 1), ("a", 1), ("L", 2), ("W", 2),
                                   ("$", 2), ("\\", 2), ("P", 2), ("T", 1), ("r", 1),
                                   ("I", 1), ("/", 1), (":", 0))}
_FS_ARGS = {ord(c): n for c, n in (("&", 0), (".", 0), ("!", 1), ("C", 1), ("p", 2),
                                   ("-", 1), ("S", 2), ("W", 1))}


class EscposDecoder:
    """Incremental ESC/POS decoder: ``feed`` bytes as they arrive, in any chunking."""

    def __init__(self, reply: Callable[[bytes], None], state: Callable[[], PrinterState],
                 on_page: Callable[[_Page, bool], None]) -> None:
        self._reply = reply
        self._state = state
        self._on_page = on_page
        self._buf = b""
        self._style = _Style()
        self._line = ""
        self._line_style = _Style()
        self._page = _Page()
        self._qr_data = ""
        self._qr_module = 3
        self.status_queries = 0
        self.drawer_pulses = 0  # ESC p m t1 t2: the cash drawer kicked

    # -- stream ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        buf = self._buf + data
        pos = 0
        while pos < len(buf):
            try:
                pos = self._step(buf, pos)
            except _NeedMore:
                break
        self._buf = buf[pos:]

    def end_of_stream(self) -> None:
        """The client went away: what was printed so far is a receipt (not cut)."""
        self._buf = b""
        self._finish_page(cut=False)

    @staticmethod
    def _take(buf: bytes, pos: int, n: int) -> bytes:
        if pos + n > len(buf):
            raise _NeedMore
        return buf[pos:pos + n]

    def _step(self, buf: bytes, pos: int) -> int:
        b = buf[pos]
        if b >= 0x20:
            end = pos
            while end < len(buf) and buf[end] >= 0x20:
                end += 1
            self._add_text(buf[pos:end])
            return end
        if b == 0x0A:
            self._newline()
        elif b == 0x09:
            self._add_text(b" " * (8 - len(self._line) % 8))
        elif b == 0x0C:
            self._newline(force=False)
        elif b == 0x18:  # CAN: forget the unprinted line
            self._line = ""
        elif b == 0x1B:
            return self._esc(buf, pos)
        elif b == 0x1D:
            return self._gs(buf, pos)
        elif b == 0x10:
            return self._dle(buf, pos)
        elif b == 0x1C:
            return self._fs(buf, pos)
        return pos + 1  # CR and other controls: nothing to print

    # -- text -----------------------------------------------------------------------------

    def _add_text(self, raw: bytes) -> None:
        codec = CODE_PAGES.get(self._style.code_page, "cp437")
        if codec not in self._page.code_pages:
            self._page.code_pages.append(codec)  # the code pages text was printed in
        if not self._line:
            self._line_style = _Style(**vars(self._style))
        self._line += raw.decode(codec, errors="replace")

    def _newline(self, force: bool = True) -> None:
        if self._line or force:
            s = self._line_style if self._line else self._style
            self._page.blocks.append(TextLine(self._line, s.align, s.bold, s.width_mul,
                                              s.height_mul))
        self._line = ""

    def _finish_page(self, cut: bool) -> None:
        if self._line:
            self._newline()
        page, self._page = self._page, _Page()
        while page.blocks and isinstance(page.blocks[-1], TextLine) and \
                not page.blocks[-1].text.strip():
            page.blocks.pop()  # the feed before the cut
        if page.blocks:
            self._on_page(page, cut)

    def _set_code_page(self, n: int) -> None:
        self._style.code_page = n
        if n not in CODE_PAGES:
            self._page.notes.append(f"unknown code page {n} (shown as CP437)")

    # -- ESC ------------------------------------------------------------------------------

    def _esc(self, buf: bytes, pos: int) -> int:
        cmd = self._take(buf, pos + 1, 1)[0]
        if cmd == ord("*"):  # column bit image: ESC * m nL nH data
            m, nl, nh = self._take(buf, pos + 2, 3)
            size = (nl + 256 * nh) * (3 if m in (32, 33) else 1)
            self._take(buf, pos + 5, size)
            self._page.notes.append("ESC * column image skipped")
            return pos + 5 + size
        if cmd == ord("("):  # ESC ( fn pL pH ...: beeper and similar, skipped
            _fn, pl, ph = self._take(buf, pos + 2, 3)
            self._take(buf, pos + 5, pl + 256 * ph)
            return pos + 5 + pl + 256 * ph
        if cmd == ord("D"):  # tab stops, NUL terminated
            end = buf.find(b"\x00", pos + 2)
            if end < 0:
                raise _NeedMore
            return end + 1
        n_args = _ESC_ARGS.get(cmd)
        if n_args is None:
            self._page.notes.append(f"unknown command ESC 0x{cmd:02x}")
            return pos + 2
        args = self._take(buf, pos + 2, n_args)
        st = self._style
        if cmd == ord("@"):
            if self._line:
                self._newline()
            self._style = _Style()
        elif cmd == ord("t"):
            self._set_code_page(args[0])
        elif cmd == ord("!"):
            st.bold = bool(args[0] & 0x08)
            st.height_mul = 2 if args[0] & 0x10 else 1
            st.width_mul = 2 if args[0] & 0x20 else 1
        elif cmd == ord("E"):
            st.bold = bool(args[0] & 1)
        elif cmd == ord("a"):
            st.align = _ALIGN.get(args[0], "left")
        elif cmd == ord("d"):
            self._newline(force=False)
            for _ in range(max(args[0] - 1, 0)):
                self._newline()
        elif cmd == ord("J"):
            self._newline(force=False)
        elif cmd == ord("p"):
            self.drawer_pulses += 1
        elif cmd in (ord("i"), ord("m")):
            self._finish_page(cut=True)
        return pos + 2 + n_args

    # -- GS -------------------------------------------------------------------------------

    def _gs(self, buf: bytes, pos: int) -> int:
        cmd = self._take(buf, pos + 1, 1)[0]
        if cmd == ord("V"):  # cut: GS V m, or GS V m n for the "feed then cut" forms
            m = self._take(buf, pos + 2, 1)[0]
            end = pos + 3 + (1 if m in (65, 66, 97, 98, 103, 104) else 0)
            self._take(buf, pos, end - pos)
            self._finish_page(cut=True)
            return end
        if cmd == ord("v"):  # GS v 0 m xL xH yL yH data
            _zero, m, xl, xh, yl, yh = self._take(buf, pos + 2, 6)
            wbytes, height = xl + 256 * xh, yl + 256 * yh
            data = self._take(buf, pos + 8, wbytes * height)
            self._raster(wbytes, height, data, m)
            return pos + 8 + wbytes * height
        if cmd == ord("("):  # GS ( fn pL pH ...
            fn, pl, ph = self._take(buf, pos + 2, 3)
            size = pl + 256 * ph
            body = self._take(buf, pos + 5, size)
            if fn == ord("k"):
                self._symbol(body)
            else:
                self._page.notes.append(f"GS ( {chr(fn)} skipped")
            return pos + 5 + size
        if cmd == ord("8"):  # GS 8 L p1..p4: large graphics data, skipped
            head = self._take(buf, pos + 2, 5)
            size = int.from_bytes(head[1:5], "little")
            self._take(buf, pos + 7, size)
            self._page.notes.append("GS 8 L graphics skipped")
            return pos + 7 + size
        if cmd == ord("k"):  # barcode: m < 7 NUL terminated, else n + data
            m = self._take(buf, pos + 2, 1)[0]
            if m < 7:
                end = buf.find(b"\x00", pos + 3)
                if end < 0:
                    raise _NeedMore
                data, nxt = buf[pos + 3:end], end + 1
            else:
                n = self._take(buf, pos + 3, 1)[0]
                data, nxt = self._take(buf, pos + 4, n), pos + 4 + n
            self._newline(force=False)
            self._page.blocks.append(TextLine(f"[barcode {data.decode('ascii', 'replace')}]",
                                              self._style.align))
            return nxt
        if cmd == ord("*"):  # define downloaded image: GS * x y data(x*y*8)
            x, y = self._take(buf, pos + 2, 2)
            self._take(buf, pos + 4, x * y * 8)
            return pos + 4 + x * y * 8
        n_args = _GS_ARGS.get(cmd)
        if n_args is None:
            self._page.notes.append(f"unknown command GS 0x{cmd:02x}")
            return pos + 2
        args = self._take(buf, pos + 2, n_args)
        if cmd == ord("!"):
            self._style.width_mul = (args[0] >> 4) + 1
            self._style.height_mul = (args[0] & 0x0F) + 1
        elif cmd == ord("r"):  # transmit status: n=1 paper sensor (no fixed bits)
            state = self._state()
            byte = (0x03 if state.paper_near_end else 0) | (0x0C if state.paper_end else 0)
            self._reply(bytes([byte if args[0] in (1, 49) else 0]))
        elif cmd == ord("I"):  # printer ID
            self._reply(b"_EDGE-SIM\x00" if args[0] >= 65 else b"\x20")
        return pos + 2 + n_args

    def _raster(self, wbytes: int, height: int, data: bytes, mode: int) -> None:
        if wbytes == 0 or height == 0:
            return
        # ESC/POS: bit 1 = black dot; PIL mode "1": bit 1 = white
        img = ImageOps.invert(Image.frombytes("1", (wbytes * 8, height), data).convert("L"))
        if mode & 1:
            img = img.resize((img.width * 2, img.height), Image.Resampling.NEAREST)
        if mode & 2:
            img = img.resize((img.width, img.height * 2), Image.Resampling.NEAREST)
        self._newline(force=False)
        self._page.blocks.append(RasterImage(img, self._style.align))

    def _symbol(self, body: bytes) -> None:
        if len(body) < 2:
            return
        cn, fn = body[0], body[1]
        if cn != 49:
            self._page.notes.append(f"2D code cn={cn} skipped (only QR is drawn)")
            return
        if fn == 67 and len(body) >= 3:
            self._qr_module = max(1, min(body[2], 16))
        elif fn == 80:  # store: cn fn m d1..dk
            self._qr_data = body[3:].decode("latin-1")
        elif fn == 81:  # print the stored symbol
            import qrcode

            qr = qrcode.QRCode(box_size=self._qr_module, border=2)
            qr.add_data(self._qr_data.encode("latin-1"))
            qr.make(fit=True)
            img = qr.make_image().get_image().convert("L")
            self._newline(force=False)
            self._page.blocks.append(RasterImage(img, self._style.align, "GS ( k",
                                                 self._qr_data))

    # -- DLE / FS -------------------------------------------------------------------------

    def _dle(self, buf: bytes, pos: int) -> int:
        cmd = self._take(buf, pos + 1, 1)[0]
        if cmd == 0x04:  # DLE EOT n: real-time status
            n = self._take(buf, pos + 2, 1)[0]
            self.status_queries += 1
            self._reply(bytes([self._state().status_byte(n)]))
            return pos + 3
        if cmd == 0x05:  # DLE ENQ n: real-time request, no answer
            self._take(buf, pos + 2, 1)
            return pos + 3
        if cmd == 0x14:  # DLE DC4 fn ...
            fn = self._take(buf, pos + 2, 1)[0]
            extra = {1: 2, 2: 2, 7: 1, 8: 7}.get(fn, 0)
            self._take(buf, pos + 3, extra)
            return pos + 3 + extra
        return pos + 1

    def _fs(self, buf: bytes, pos: int) -> int:
        cmd = self._take(buf, pos + 1, 1)[0]
        if cmd == ord("("):
            _fn, pl, ph = self._take(buf, pos + 2, 3)
            size = pl + 256 * ph
            self._take(buf, pos + 5, size)
            return pos + 5 + size
        n_args = _FS_ARGS.get(cmd, 0)
        self._take(buf, pos + 2, n_args)
        return pos + 2 + n_args


# -- rendering -----------------------------------------------------------------------------


def _font(size: int, bold: bool) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    name = "DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"
    for folder in FONT_DIRS:
        path = Path(folder) / name
        if path.exists():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)  # Pillow's own font: no č, but never missing


def _aligned(line: TextLine, columns: int) -> str:
    used = len(line.text) * line.width_mul
    room = max(columns - used, 0)
    pad = {"center": room // 2, "right": room}.get(line.align, 0)
    return (" " * pad + line.text).rstrip()


def text_of(page: _Page, columns: int) -> list[str]:
    out: list[str] = []
    for block in page.blocks:
        if isinstance(block, TextLine):
            out.append(_aligned(block, columns))
        else:
            label = f"[QR {block.qr_data}]" if block.qr_data is not None \
                else f"[image {block.image.width}x{block.image.height}]"
            out.append(_aligned(TextLine(label, block.align), columns))
    return out


def render_png(page: _Page, dots: int) -> Image.Image:
    heights = [LINE_H * b.height_mul if isinstance(b, TextLine) else b.image.height
               for b in page.blocks]
    canvas = Image.new("L", (dots, sum(heights) + 2 * LINE_H), 255)
    draw = ImageDraw.Draw(canvas)
    y = LINE_H
    for block, h in zip(page.blocks, heights, strict=True):
        if isinstance(block, TextLine):
            font = _font(20 * block.height_mul, block.bold)
            # double width/height are drawn with a bigger font: position by drawn width
            width = int(draw.textlength(block.text, font=font))
            x = {"center": (dots - width) // 2, "right": dots - width}.get(block.align, 0)
            draw.text((max(x, 0), y), block.text, fill=0, font=font)
        else:
            img = block.image
            x = {"center": (dots - img.width) // 2, "right": dots - img.width}.get(
                block.align, 0)
            canvas.paste(img, (max(x, 0), y))
        y += h
    return canvas


def _zbar(img: Image.Image) -> list[str]:
    try:
        from pyzbar.pyzbar import ZBarSymbol, decode
    except ImportError:  # camera extra not installed: the PNG still shows the code
        return []
    return [r.data.decode("utf-8", "replace") for r in decode(img, symbols=[ZBarSymbol.QRCODE])]


# -- the TCP printer -----------------------------------------------------------------------


class VirtualPrinter:
    def __init__(self, host: str = "127.0.0.1", port: int = 9100,
                 out_dir: str | Path | None = None, *, paper_mm: int = 80,
                 state: PrinterState | None = None,
                 on_receipt: Callable[[VirtualReceipt], None] | None = None) -> None:
        if paper_mm not in DOT_WIDTH:
            raise ValueError("paper width must be 58 or 80 mm")
        self.host, self.port = host, port
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.columns = DOT_WIDTH[paper_mm] // CHAR_W
        self.dots = DOT_WIDTH[paper_mm]
        self.state = state or PrinterState()
        self.on_receipt = on_receipt
        self.receipts: list[VirtualReceipt] = []
        self.bytes_received = 0
        self._cond = threading.Condition()
        self._decoder = EscposDecoder(self._send_reply, lambda: self.state, self._page_done)
        self._listener: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._running = False
        self._next_index = self._first_index()

    @property
    def status_queries(self) -> int:
        return self._decoder.status_queries

    @property
    def drawer_pulses(self) -> int:
        return self._decoder.drawer_pulses

    def _first_index(self) -> int:
        if self.out_dir is None or not self.out_dir.is_dir():
            return 1
        taken = [int(p.stem.rpartition("-")[2]) for p in self.out_dir.glob("receipt-*.txt")
                 if p.stem.rpartition("-")[2].isdigit()]
        return max(taken, default=0) + 1

    def set_state(self, **changes: bool) -> None:
        """E.g. ``set_state(paper_end=True)``; applies to the next status request."""
        self.state = PrinterState(**{**{f: getattr(self.state, f) for f in
                                        ("offline", "paper_end", "paper_near_end",
                                         "cover_open")}, **changes})

    def start(self) -> int:
        """Listen (again, on the same port after a stop); returns the bound port."""
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(8)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._running = True
        self._thread = threading.Thread(target=self._serve, name=f"vprinter-{self.port}",
                                        daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        """Like pulling the plug: the listener and any open connection go away."""
        self._running = False
        for sock in (self._listener, self._conn):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._listener = self._conn = self._thread = None

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.receipts) >= count, timeout)

    def _serve(self) -> None:
        assert self._listener is not None
        listener = self._listener
        while self._running:
            try:
                conn, _addr = listener.accept()
            except OSError:
                return  # stopped
            self._conn = conn
            try:
                while self._running:
                    data = conn.recv(65536)
                    if not data:
                        break
                    self.bytes_received += len(data)
                    self._decoder.feed(data)
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    conn.close()
                self._conn = None
                self._decoder.end_of_stream()

    def _send_reply(self, data: bytes) -> None:
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.sendall(data)

    def _page_done(self, page: _Page, cut: bool) -> None:
        index = self._next_index
        self._next_index += 1
        lines = text_of(page, self.columns)
        png = render_png(page, self.dots)
        qr = [b.qr_data for b in page.blocks if isinstance(b, RasterImage) and b.qr_data]
        for block in page.blocks:
            if isinstance(block, RasterImage) and block.qr_data is None:
                qr += _zbar(block.image)
        txt_path = png_path = None
        if self.out_dir is not None:
            txt_path = self.out_dir / f"receipt-{index:04d}.txt"
            png_path = self.out_dir / f"receipt-{index:04d}.png"
            txt_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            png.save(png_path)
        receipt = VirtualReceipt(index, tuple(lines), tuple(qr),
                                 sum(isinstance(b, RasterImage) for b in page.blocks), cut,
                                 tuple(page.code_pages), tuple(page.notes), txt_path, png_path)
        with self._cond:
            self.receipts.append(receipt)
            self._cond.notify_all()
        if self.on_receipt is not None:
            self.on_receipt(receipt)
