"""Line formats of serial readers: every accepted form, every refused one with its reason."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.card_line_formats import FORMATS, LineFramer, parse_line


def _wiegand(data: int, length: int) -> str:
    bits = format(data, f"0{length - 2}b")
    half = (length - 2) // 2
    even = str(bits[:half].count("1") % 2)
    odd = str(1 - bits[half:].count("1") % 2)
    return even + bits + odd


@pytest.mark.parametrize(("line", "value"), [
    (b"04A1B2C3", "04A1B2C3"),
    (b"04:a1:b2:c3:d4:e5:f6", "04A1B2C3D4E5F6"),
    (b" 04-A1-B2-C3 ", "04A1B2C3"),
])
def test_hex(line: bytes, value: str) -> None:
    r = parse_line(line, "hex")
    assert (r.kind, r.value, r.dropped) == ("uid", value, None)


@pytest.mark.parametrize("line", [b"04A1B", b"04A1B2", b"XYZ12345", b"04A1B2C3D4E5F60708091011"])
def test_hex_refused(line: bytes) -> None:
    assert parse_line(line, "hex").dropped == "bad_format"


def test_dec10_byte_orders() -> None:
    # UID 04 A1 B2 C3 read as a little-endian uint32 = 0xC3B2A104 = 3283263748
    assert parse_line(b"3283263748", "dec10").value == "04A1B2C3"
    assert parse_line(b"0010777212", "dec10", "msb").value == "00A4727C"
    assert parse_line(b"9999999999", "dec10").dropped == "bad_format"  # > 2^32 - 1
    assert parse_line(b"12345", "dec10").dropped == "bad_format"


def test_wiegand26_bits_and_decimal_agree() -> None:
    frame = _wiegand(123 << 16 | 45678, 26)
    assert parse_line(frame.encode(), "wiegand26").value == f"{123 << 16 | 45678:08X}"
    assert parse_line(b"123,45678", "wiegand26").value == f"{123 << 16 | 45678:08X}"
    assert parse_line(b"123/45678", "wiegand26").value == f"{123 << 16 | 45678:08X}"


def test_wiegand_parity_and_range() -> None:
    frame = _wiegand(0x12345678, 34)
    assert parse_line(frame.encode(), "wiegand34").value == "12345678"
    for i in (0, 5, 20, 33):  # flip one bit anywhere: one of the two parities breaks
        flipped = frame[:i] + ("1" if frame[i] == "0" else "0") + frame[i + 1:]
        assert parse_line(flipped.encode(), "wiegand34").dropped == "bad_parity"
    assert parse_line(b"1" * 25, "wiegand26").dropped == "bad_format"
    assert parse_line(b"256,1", "wiegand26").dropped == "bad_format"
    assert parse_line(b"1,65536", "wiegand34").dropped == "bad_format"


def test_qr_and_noise() -> None:
    assert parse_line("MEMBER-ŽIGA-7".encode(), "qr").value == "MEMBER-ŽIGA-7"
    assert parse_line(b"\xff\xfe\x00", "qr").dropped == "noise"
    assert parse_line(b"ab\x07cd", "hex").dropped == "noise"
    assert parse_line(b"   ", "hex").dropped == "noise"


def test_framer_cr_lf_stx_etx_and_too_long() -> None:
    f = LineFramer(max_line=16)
    out = f.feed(b"AAAA\r\nBB")
    assert out == [b"AAAA"]
    assert f.feed(b"BB\n\x02CCCC\x03") == [b"BBBB", b"CCCC"]
    assert f.feed(b"partial\x02DDDD\x03") == ["noise", b"DDDD"]
    assert f.feed(b"X" * 100) == ["too_long"]
    assert f.feed(b"X" * 100 + b"\nEEEE\n") == [b"EEEE"]  # rest of the huge frame skipped
    assert f.feed(b"04A1") == [] and f.reset() is True and f.reset() is False


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600), fmt=st.sampled_from(FORMATS), cut=st.integers(1, 50))
def test_any_bytes_never_crash(data: bytes, fmt: str, cut: int) -> None:
    f = LineFramer(max_line=64)
    for i in range(0, len(data), cut):  # arbitrary chunking, as reads come off the port
        for item in f.feed(data[i:i + cut]):
            if isinstance(item, str):
                assert item in ("noise", "too_long")
                continue
            assert len(item) <= 64
            r = parse_line(item, fmt)
            assert (r.kind is None) != (r.dropped is None)
            if r.kind == "uid":
                assert r.value == r.value.upper() and 8 <= len(r.value) <= 20
