"""WebP conversion with Pillow (CONTRACT section 4). CPU-bound: call it in an executor, never on the loop.

`convert()` is a pure bytes-to-bytes function; `convert_stored()` wraps it for a worker process:
it reads the original from the store and writes the result atomically, so only small metadata
crosses the process boundary.
"""

from __future__ import annotations

import io
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pillow_heif
import py_svg_hush
from PIL import Image, ImageCms, ImageFile, ImageOps, ImageSequence, UnidentifiedImageError

from adapters.formats import PIXEL_FORMATS, TooManyPixels, sniff
from adapters.storage import FileStore
from core.uploads import WEBP, file_suffix

WEBP_QUALITY = 80  # CONTRACT 4 / guide 6.4
WEBP_METHOD = 4  # libwebp's default speed/size trade-off
# Decode in 1 MiB blocks instead of 64 KiB: fewer GIL round-trips when a busy loop shares the process.
ImageFile.MAXBLOCK = 1024 * 1024

pillow_heif.register_heif_opener()


class ConversionFailed(Exception):
    """The input cannot be decoded (or sanitised): the image ends FAILED with this reason."""


class DimensionsExceeded(ConversionFailed):
    """The decoded size is over the pixel limit (a decompression bomb, or a header that lied)."""


@dataclass(frozen=True)
class Converted:
    """The bytes to store and what they are."""

    data: bytes
    format: str  # extension code of the stored file: WEBP, or the original's on pass-through
    width: int | None
    height: int | None
    fallback_reason: str | None = None  # set when WebP encoding failed and the original is kept


@dataclass(frozen=True)
class StoredResult:
    """What convert_stored() wrote."""

    key: str
    format: str
    size: int
    width: int | None
    height: int | None
    fallback_reason: str | None


def configure_pillow(max_pixels: int) -> None:
    """Set Pillow's decompression-bomb limit to ours (run in every process that decodes)."""
    Image.MAX_IMAGE_PIXELS = max_pixels


def convert(data: bytes, max_pixels: int) -> Converted:
    """Convert an uploaded file to what is stored; raise ConversionFailed when undecodable."""
    kind = sniff(data[:4096])
    if kind is None:
        raise ConversionFailed("not a file of any supported format")
    if kind in ("MP4", "MOV"):
        return Converted(data, kind, None, None)  # signature checked by sniff(): pass through
    if kind == "SVG":
        return Converted(sanitize_svg(data), "SVG", None, None)
    return _convert_raster(data, kind, max_pixels)


def _convert_raster(data: bytes, kind: str, max_pixels: int) -> Converted:
    assert kind in PIXEL_FORMATS
    configure_pillow(max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.width * img.height > max_pixels:
                    raise TooManyPixels(f"{img.width}x{img.height} is over {max_pixels} pixels")
                animated = getattr(img, "n_frames", 1) > 1
                encoded, size = _encode_animated(img) if animated else _encode_still(img)
    except (TooManyPixels, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise DimensionsExceeded(f"image dimensions exceeded: {exc}") from None
    except _EncodeFailed as exc:
        # Decodable but not encodable as WebP (e.g. wider than 16383 px): keep the original.
        return Converted(data, kind, exc.width, exc.height, fallback_reason=str(exc))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ConversionFailed(f"undecodable {kind}: {exc}") from None
    return Converted(encoded, WEBP, size[0], size[1])


class _EncodeFailed(Exception):
    def __init__(self, reason: str, width: int, height: int) -> None:
        super().__init__(reason)
        self.width, self.height = width, height


def _encode_still(img: Image.Image) -> tuple[bytes, tuple[int, int]]:
    img.load()  # decode errors (truncated files) surface here, as decode errors
    icc = img.info.get("icc_profile")
    # HEIF decoders apply the orientation themselves and reset the tag, so this is a no-op there.
    frame = ImageOps.exif_transpose(img)
    frame, icc = _to_webp_mode(frame, icc)
    return _save(frame, icc, save_all=False), frame.size


def _encode_animated(img: Image.Image) -> tuple[bytes, tuple[int, int]]:
    icc = img.info.get("icc_profile")
    frames, durations = [], []
    for frame in ImageSequence.Iterator(img):
        frame.load()
        durations.append(int(frame.info.get("duration", img.info.get("duration", 100)) or 100))
        frames.append(frame.convert("RGBA"))
    first = frames[0]
    extra = {"append_images": frames[1:], "duration": durations, "loop": int(img.info.get("loop", 0))}
    return _save(first, icc, save_all=True, **extra), first.size


def _to_webp_mode(img: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    if img.mode in ("RGB", "RGBA"):
        return img, icc
    if img.mode == "CMYK" and icc:
        # WebP has no CMYK: convert through the embedded profile to sRGB so colours stay right.
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.createProfile("sRGB")
        return ImageCms.profileToProfile(img, src, srgb, outputMode="RGB"), None
    has_alpha = img.mode in ("LA", "PA", "RGBa", "La") or "transparency" in img.info
    return img.convert("RGBA" if has_alpha else "RGB"), (None if img.mode == "CMYK" else icc)


def _save(img: Image.Image, icc: bytes | None, *, save_all: bool, **extra: object) -> bytes:
    out = io.BytesIO()
    try:
        # No exif= and no xmp=: EXIF (GPS included) and XMP are dropped; the ICC profile is kept.
        img.save(
            out,
            "WEBP",
            quality=WEBP_QUALITY,
            method=WEBP_METHOD,
            icc_profile=icc or "",
            save_all=save_all,
            **extra,
        )
    except (OSError, ValueError) as exc:
        raise _EncodeFailed(f"WebP encoding failed: {exc}", img.width, img.height) from None
    return out.getvalue()


_LINK_ATTRS = ("href", "{http://www.w3.org/1999/xlink}href")


def sanitize_svg(data: bytes) -> bytes:
    """Remove scripts, event handlers and external references; raise ConversionFailed if unparsable.

    svg-hush (a maintained sanitiser) drops scripts, handlers and foreign content; it rewrites
    external URLs to relative ones, so links that are not in-document (#id) or inline data are
    removed as well.
    """
    try:
        hushed = py_svg_hush.filter_svg(data)
        ET.register_namespace("", "http://www.w3.org/2000/svg")
        ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
        root = ET.fromstring(hushed)
    except Exception as exc:
        raise ConversionFailed(f"SVG could not be sanitised: {exc}") from None
    for element in root.iter():
        for attr in _LINK_ATTRS:
            value = element.get(attr)
            if value is not None and not (value.startswith("#") or value.startswith("data:image/")):
                del element.attrib[attr]
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def convert_stored(root: str, origin_key: str, target_stem: str, max_pixels: int) -> StoredResult:
    """Convert a stored original and write `{target_stem}.{ext}` atomically; runs in a pool process.

    Deterministic: running it twice for one image writes the same key with the same bytes.
    """
    store = FileStore(root)
    return _store(store, convert(store.read(origin_key), max_pixels), target_stem)


def convert_and_store(root: str, data: bytes, target_stem: str, max_pixels: int) -> StoredResult:
    """Convert uploaded bytes and write the result atomically (the ?sync=true path)."""
    return _store(FileStore(root), convert(data, max_pixels), target_stem)


def _store(store: FileStore, result: Converted, target_stem: str) -> StoredResult:
    key = f"{target_stem}.{file_suffix(result.format)}"
    size = store.write(key, result.data)
    return StoredResult(key, result.format, size, result.width, result.height, result.fallback_reason)
