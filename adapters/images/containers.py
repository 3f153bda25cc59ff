"""A structure check of MP4 and MOV files (ISO base media / QuickTime), which are stored as uploaded.

Pass-through files are served to browsers as video, so the sniffed signature alone is not enough
(issue 13: `\\0\\0\\0\\x08free<?php ...` passed as MOV, `ftypisom` + HTML as MP4). A file is accepted
only when its boxes tile it exactly: every box has a printable four-character type and a size that
fits the file, the first box is an `ftyp` naming a known brand (or, for QuickTime files written
before `ftyp` existed, one of the classic top-level atoms), and there is a `moov` box whose own
children tile it and include its `mvhd` header. Nothing inside the tracks is decoded: codec data,
sample tables and `mdat` contents are not checked (docs/api.md says so).

A hand-written walk, not a library: the pure-Python MP4 parsers on PyPI parse far more than this
needs (and are unmaintained); ffprobe would add a binary to every api image for one check. The
walk is bounded: at most MAX_BOXES boxes per level, so a file of 8-byte boxes costs no more than that.
"""

from __future__ import annotations

MAX_BOXES = 10_000

MP4_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"dash", b"MSNV"}
)
MOV_BRAND = b"qt  "
# Top-level atoms a QuickTime file may start with when it has no `ftyp` (before QuickTime 6).
LEGACY_MOV_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})


class InvalidContainer(ValueError):
    """The bytes are not a well-formed MP4/MOV file."""


def boxes(data: bytes | memoryview, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """Return (type, payload start, box end) for each box tiling data[start:end]; raise InvalidContainer."""
    view = memoryview(data)
    end = len(view) if end is None else end
    found: list[tuple[bytes, int, int]] = []
    at = start
    while at < end:
        if len(found) >= MAX_BOXES:
            raise InvalidContainer(f"more than {MAX_BOXES} boxes")
        if end - at < 8:
            raise InvalidContainer(f"{end - at} stray bytes at offset {at}")
        size, kind, header = int.from_bytes(view[at : at + 4], "big"), bytes(view[at + 4 : at + 8]), 8
        if not all(0x20 <= c <= 0x7E for c in kind):
            raise InvalidContainer(f"box type {kind!r} at offset {at} is not four printable characters")
        if size == 1:
            if end - at < 16:
                raise InvalidContainer(f"box {kind!r} at offset {at} is truncated")
            size, header = int.from_bytes(view[at + 8 : at + 16], "big"), 16
        elif size == 0:
            size = end - at  # "to the end of the file": only the last box can say so
        if size < header or at + size > end:
            raise InvalidContainer(f"box {kind!r} at offset {at} has size {size}, which does not fit")
        found.append((kind, at + header, at + size))
        at += size
    return found


def container_format(data: bytes) -> str:
    """Return "MP4" or "MOV" for a well-formed file; raise InvalidContainer otherwise."""
    top = boxes(data)
    if not top:
        raise InvalidContainer("empty file")
    first, start, end = top[0]
    if first == b"ftyp":
        if end - start < 8:
            raise InvalidContainer("ftyp box is too short")
        major = data[start : start + 4]
        brands = {major} | {data[i : i + 4] for i in range(start + 8, end - 3, 4)}
        if major == MOV_BRAND:
            kind = "MOV"
        elif brands & MP4_BRANDS or major.startswith(b"3g"):
            kind = "MP4"
        else:
            raise InvalidContainer(f"unknown ftyp brand {major!r}")
    elif first in LEGACY_MOV_ATOMS:
        kind = "MOV"
    else:
        raise InvalidContainer(f"first box is {first!r}, not ftyp")
    movies = [(s, e) for t, s, e in top if t == b"moov"]
    if len(movies) != 1:
        raise InvalidContainer(f"{len(movies)} moov boxes (exactly one expected)")
    if b"mvhd" not in {t for t, _, _ in boxes(data, *movies[0])}:
        raise InvalidContainer("moov has no mvhd header")
    return kind
