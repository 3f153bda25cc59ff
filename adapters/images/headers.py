"""Format sniffing from the bytes, and image dimensions from the header alone (CONTRACT 2.1)."""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from typing import BinaryIO

import pillow_heif
from PIL import Image, UnidentifiedImageError

from adapters.images.containers import LEGACY_MOV_ATOMS, MOV_BRAND, MP4_BRANDS

pillow_heif.register_heif_opener()

# Enough bytes to recognise every supported signature and an SVG root after an XML prolog.
SNIFF_BYTES = 4096

_AVIF_BRANDS = {b"avif", b"avis"}
_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"}
_HEIF_BRANDS = {b"mif1", b"msf1"}
_SVG_ROOT = re.compile(
    rb"^\s*(<\?xml[^>]*\?>\s*)?(<!--.*?-->\s*)*(<!DOCTYPE[^>]*>\s*)?(<!--.*?-->\s*)*<svg[\s>]", re.DOTALL
)


def sniff(head: bytes) -> str | None:
    """Return the format code (JPEG, PNG, GIF, WEBP, BMP, AVIF, HEIC, HEIF, MP4, MOV, SVG) or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM" and len(head) >= 26:
        return "BMP"
    if head[4:8] == b"ftyp":
        return _iso_bmff(head)
    if head[4:8] in LEGACY_MOV_ATOMS:
        return "MOV"
    if _SVG_ROOT.match(head.removeprefix(b"\xef\xbb\xbf")):
        return "SVG"
    return None


def _iso_bmff(head: bytes) -> str | None:
    box_size = int.from_bytes(head[0:4], "big")
    major = head[8:12]
    brands = {major} | {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
    if major in _AVIF_BRANDS or (major in _HEIF_BRANDS and brands & _AVIF_BRANDS):
        return "AVIF"
    if major in _HEIC_BRANDS:
        return "HEIC"
    if major in _HEIF_BRANDS:
        return "HEIC" if brands & _HEIC_BRANDS else "HEIF"
    if major == MOV_BRAND:
        return "MOV"
    if major in MP4_BRANDS or major.startswith(b"3g"):
        return "MP4"
    return None


PIXEL_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP", "AVIF", "HEIC", "HEIF"})


class TooManyPixels(Exception):
    """The image's pixels, summed over its frames, are over the limit."""


@dataclass(frozen=True)
class Dimensions:
    """Pixel size read from a header, and the frames (or images) the file holds."""

    width: int
    height: int
    frames: int = 1


def read_dimensions(data: bytes | BinaryIO, max_pixels: int) -> Dimensions:
    """Read the size and frame count without decoding pixels; raise TooManyPixels or ValueError.

    `data`: the bytes, or a file open at its start (a spooled upload: only what the header needs is read).

    The limit applies to the pixels of every frame together (CONTRACT 2.1): 300 frames of
    1000x1000 are 300 MP, however small the file, since a decoder holds each frame whole.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as img:
                width, height = img.size
                frames, pixels = _frames_and_pixels(img)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise TooManyPixels(str(exc)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ValueError(f"unreadable image header: {exc}") from None
    if pixels > max_pixels:
        shape = f"{width}x{height}" if frames == 1 else f"{frames} frames of {width}x{height}"
        raise TooManyPixels(f"{shape} is {pixels} pixels, over {max_pixels}")
    return Dimensions(width, height, frames)


def _frames_and_pixels(img: Image.Image) -> tuple[int, int]:
    frames = int(getattr(img, "n_frames", 1))
    if frames == 1 or img.format != "HEIF":
        # GIF, WebP and APNG frames are decoded onto the whole canvas: each costs the canvas size.
        return frames, img.width * img.height * frames
    # The images of a HEIF file have sizes of their own; seeking only selects one (no decoding).
    pixels = 0
    for index in range(frames):
        img.seek(index)
        pixels += img.width * img.height
    img.seek(0)
    return frames, pixels
