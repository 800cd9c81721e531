"""A small ESC/POS reader for tests: the text (CP852) and the raster images of a job."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image, ImageOps


@dataclass
class Decoded:
    text: str = ""
    images: list[Image.Image] = field(default_factory=list)
    codepages: list[int] = field(default_factory=list)
    cuts: int = 0


def decode(data: bytes) -> Decoded:
    out = Decoded()
    text = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b == 0x1B:  # ESC
            cmd = data[i + 1]
            if cmd == 0x40:  # ESC @
                i += 2
            elif cmd == 0x74:  # ESC t n
                out.codepages.append(data[i + 2])
                i += 3
            elif cmd in (0x45, 0x61, 0x64, 0x21, 0x2D, 0x4D, 0x47, 0x7B):  # ESC x n
                if cmd == 0x64:
                    text += b"\n" * data[i + 2]
                i += 3
            else:
                raise ValueError(f"unknown ESC {cmd:#x} at {i}")
        elif b == 0x1D:  # GS
            cmd = data[i + 1]
            if cmd == 0x56:  # GS V m [n]
                out.cuts += 1
                i += 3 if data[i + 2] in (0, 1, 48, 49) else 4
            elif cmd == 0x76 and data[i + 2] == 0x30:  # GS v 0 m xL xH yL yH d...
                wb = data[i + 4] | data[i + 5] << 8
                h = data[i + 6] | data[i + 7] << 8
                raw = data[i + 8:i + 8 + wb * h]
                img = Image.frombytes("1", (wb * 8, h), bytes(raw))
                out.images.append(ImageOps.invert(img.convert("L")))
                i += 8 + wb * h
            elif cmd == 0x21:  # GS ! n
                i += 3
            else:
                raise ValueError(f"unknown GS {cmd:#x} at {i}")
        else:
            text.append(b)
            i += 1
    out.text = text.decode("cp852")
    return out
