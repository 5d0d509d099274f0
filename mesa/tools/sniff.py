"""What a media file is, from its first bytes, and an image's size from its header — before any decoding.

The file name's suffix says nothing (a download's suffix comes from the URL), so the type is read from
the magic bytes; an unknown type is refused before a decoder sees it. An image's width and height are
read from its header (PNG IHDR, JPEG SOF, GIF screen, BMP info header, WebP VP8/VP8L/VP8X, TIFF IFD,
PNM) so the pixel limit is enforced before decoding: a small file can declare a huge image.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

__all__ = ["HEAD_BYTES", "image_size", "media_kind"]

HEAD_BYTES = 64
"""How many leading bytes :func:`media_kind` looks at."""

_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
_AV_MAGIC = (
    b"ID3",  # MP3 with an ID3 tag
    b"OggS",
    b"fLaC",
    b"\x1aE\xdf\xa3",  # Matroska / WebM (EBML)
    b"FLV",
    b"#!AMR",
    b".snd",  # AU
    b"caff",  # Core Audio
    b"0&\xb2u\x8ef\xcf\x11",  # ASF: WMA / WMV
    b"\x00\x00\x01\xba",  # MPEG program stream
    b"\x00\x00\x01\xb3",  # MPEG video
    b"RF64",  # 64-bit WAV
    b"BW64",  # broadcast 64-bit WAV
    b"wvpk",  # WavPack
    b"MAC ",  # Monkey's Audio
)
_QUICKTIME_ATOMS = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")  # MP4, M4A, MOV, 3GP


def media_kind(head: bytes) -> str | None:
    """``"image/<format>"``, ``"av"`` (an audio or video container) or ``None`` (not a type mesa reads)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    for magic, name in _IMAGE_MAGIC:
        if head.startswith(magic):
            return f"image/{name}"
    if len(head) >= 3 and head[:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
        return "image/pnm"
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"AVI "):
        return "av"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "av"
    if head.startswith(_AV_MAGIC) or head[4:8] in _QUICKTIME_ATOMS:
        return "av"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # MPEG audio frame / ADTS AAC
        return "av"
    if len(head) > 0 and head[0] == 0x47 and (len(head) < 189 or head[188] == 0x47):  # MPEG transport stream
        return "av"
    return None


def image_size(path: str | Path, kind: str) -> tuple[int, int] | None:
    """``(width, height)`` from the header of an image of ``kind`` (from :func:`media_kind`); ``None`` if unreadable."""
    readers = {
        "image/png": _png,
        "image/gif": _gif,
        "image/bmp": _bmp,
        "image/webp": _webp,
        "image/jpeg": _jpeg,
        "image/tiff": _tiff,
        "image/pnm": _pnm,
    }
    reader = readers.get(kind)
    if reader is None:
        return None
    with open(path, "rb") as handle:
        try:
            size = reader(handle)
        except (struct.error, ValueError, IndexError):
            return None
    if size is None or size[0] <= 0 or size[1] <= 0:
        return None
    return size


def _png(handle: BinaryIO) -> tuple[int, int] | None:
    head = handle.read(24)
    if head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def _gif(handle: BinaryIO) -> tuple[int, int]:
    return struct.unpack("<HH", handle.read(10)[6:10])


def _bmp(handle: BinaryIO) -> tuple[int, int]:
    head = handle.read(26)
    (header_size,) = struct.unpack("<I", head[14:18])
    if header_size == 12:  # BITMAPCOREHEADER: 16-bit sizes
        return struct.unpack("<HH", head[18:22])
    width, height = struct.unpack("<ii", head[18:26])
    return abs(width), abs(height)  # a negative height means top-down rows


def _webp(handle: BinaryIO) -> tuple[int, int] | None:
    head = handle.read(30)
    chunk = head[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        (bits,) = struct.unpack("<I", head[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    return None


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(handle: BinaryIO) -> tuple[int, int] | None:
    handle.read(2)  # SOI
    for _ in range(4096):  # segments before the frame header; a bound, so junk cannot loop for long
        if handle.read(1) != b"\xff":
            return None
        marker = handle.read(1)
        for _fill in range(64):  # optional fill bytes before the marker code
            if marker != b"\xff":
                break
            marker = handle.read(1)
        if not marker or marker[0] in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        code = marker[0]
        if 0xD0 <= code <= 0xD7 or code == 0x01:  # markers without a length
            continue
        (length,) = struct.unpack(">H", handle.read(2))
        if code in _JPEG_SOF:
            height, width = struct.unpack(">xHH", handle.read(5))
            return width, height
        handle.seek(length - 2, 1)
    return None


def _tiff(handle: BinaryIO) -> tuple[int, int] | None:
    order = "<" if handle.read(2) == b"II" else ">"
    handle.read(2)
    (offset,) = struct.unpack(order + "I", handle.read(4))
    handle.seek(offset)
    (count,) = struct.unpack(order + "H", handle.read(2))
    found: dict[int, int] = {}
    for _ in range(min(count, 1024)):
        tag, kind, _n, raw = struct.unpack(order + "HHI4s", handle.read(12))
        if tag in (256, 257):
            found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), raw[: 2 if kind == 3 else 4])[0]
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None


def _pnm(handle: BinaryIO) -> tuple[int, int] | None:
    tokens: list[bytes] = []
    for line in handle.read(4096).splitlines():
        tokens += line.split(b"#", 1)[0].split()
        if len(tokens) >= 3:
            return int(tokens[1]), int(tokens[2])
    return None
