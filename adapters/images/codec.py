"""WebP conversion with Pillow (CONTRACT section 4). CPU-bound: call it in an executor, never on the loop.

`convert()` is a pure bytes-to-bytes function; `convert_stored()` wraps it for a worker process:
it reads the original from a directory and writes the results there (the directory itself, or
a conversion's scratch workspace on S3), so only small metadata crosses the process boundary.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pillow_heif
from PIL import Image, ImageFile, ImageOps, ImageSequence, UnidentifiedImageError

from adapters.files.directory import Directory
from adapters.images.containers import InvalidContainer, container_format
from adapters.images.headers import PIXEL_FORMATS, TooManyPixels, sniff
from adapters.images.modes import to_webp_mode
from adapters.images.svg import InvalidSvg, sanitize_svg
from core.ports import Conversion
from core.upload_rules import WEBP, file_suffix
from core.variants import VariantFile, sizes_for, variant_key

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
    variants: tuple[tuple[int, int, bytes], ...] = ()  # (width, height, WebP bytes), ascending


def configure_pillow(max_pixels: int) -> None:
    """Set Pillow's decompression-bomb limit to ours (run in every process that decodes)."""
    Image.MAX_IMAGE_PIXELS = max_pixels


def convert(data: bytes, max_pixels: int, widths: Sequence[int] = ()) -> Converted:
    """Convert an uploaded file to what is stored, with a variant per width smaller than the image.

    Raise ConversionFailed when it cannot be converted. Variants are made from the same decode as
    the full-size WebP (orientation applied once); an animated input's variants are still images
    of its first frame. Pass-through formats and a kept original (WebP encoding failed) have none.

    Every failure of an input is a ConversionFailed, whatever raised it inside a codec or parser
    (a RecursionError included): the image ends FAILED, a sync upload answers 400, never 500.
    A MemoryError is let through: the pool turns it into the memory ceiling's failure.
    """
    try:
        return _convert(data, max_pixels, widths)
    except (ConversionFailed, MemoryError):
        raise
    except Exception as exc:
        raise ConversionFailed(f"conversion error: {type(exc).__name__}: {exc}") from None


def _convert(data: bytes, max_pixels: int, widths: Sequence[int]) -> Converted:
    kind = sniff(data[:4096])
    if kind is None:
        raise ConversionFailed("not a file of any supported format")
    if kind in ("MP4", "MOV"):
        try:
            return Converted(data, container_format(data), None, None)
        except InvalidContainer as exc:
            raise ConversionFailed(f"invalid {kind} container: {exc}") from None
    if kind == "SVG":
        try:
            return Converted(sanitize_svg(data), "SVG", None, None)
        except InvalidSvg as exc:
            raise ConversionFailed(str(exc)) from None
    return _convert_raster(data, kind, max_pixels, widths)


def _convert_raster(data: bytes, kind: str, max_pixels: int, widths: Sequence[int]) -> Converted:
    assert kind in PIXEL_FORMATS
    configure_pillow(max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.width * img.height > max_pixels:
                    raise TooManyPixels(f"{img.width}x{img.height} is over {max_pixels} pixels")
                animated = getattr(img, "n_frames", 1) > 1
                if animated:
                    encoded, size = _encode_animated(img, max_pixels)
                    img.seek(0)
                    frame, icc = to_webp_mode(img, img.info.get("icc_profile"))
                else:
                    frame, icc = _decoded_still(img)
                    encoded, size = _save(frame, icc, save_all=False), frame.size
                variants = tuple(_variants(frame, icc, widths))
    except (TooManyPixels, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise DimensionsExceeded(f"image dimensions exceeded: {exc}") from None
    except _EncodeFailed as exc:
        # Decodable but not encodable as WebP (e.g. wider than 16383 px): keep the original.
        return Converted(data, kind, exc.width, exc.height, fallback_reason=str(exc))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ConversionFailed(f"undecodable {kind}: {exc}") from None
    return Converted(encoded, WEBP, size[0], size[1], variants=variants)


class _EncodeFailed(Exception):
    def __init__(self, reason: str, width: int, height: int) -> None:
        super().__init__(reason)
        self.width, self.height = width, height


def _decoded_still(img: Image.Image) -> tuple[Image.Image, bytes | None]:
    img.load()  # decode errors (truncated files) surface here, as decode errors
    icc = img.info.get("icc_profile")
    # HEIF decoders apply the orientation themselves and reset the tag, so this is a no-op there.
    # In place: without it Pillow returns a full copy even when there is nothing to turn (200 MB
    # more at 50 MP RGBA).
    ImageOps.exif_transpose(img, in_place=True)
    return to_webp_mode(img, icc)


# Lanczos after a box reduction to within 3x of the target (Pillow's reducing_gap): indistinguishable
# from plain Lanczos at these ratios, and it reads the full-size pixels once per variant, not 3x3 times.
RESIZE_FILTER = Image.Resampling.LANCZOS
REDUCING_GAP = 3.0


def _variants(frame: Image.Image, icc: bytes | None, widths: Sequence[int]) -> Iterator[tuple[int, int, bytes]]:
    for width, height in sizes_for(frame.width, frame.height, widths):
        smaller = frame.resize((width, height), RESIZE_FILTER, reducing_gap=REDUCING_GAP)
        yield width, height, _save(smaller, icc, save_all=False)


def _encode_animated(img: Image.Image, max_pixels: int) -> tuple[bytes, tuple[int, int]]:
    """Encode every frame, holding one decoded frame at a time (not all of them as RGBA).

    A first pass reads each frame's duration and counts the frames' pixels against the limit
    while decoding, whatever the header said; the encoder then takes the frames from the file
    itself, one by one (Pillow's WebP writer seeks through an image it is given with save_all).
    """
    durations: list[int] = []
    pixels = 0
    for frame in ImageSequence.Iterator(img):
        frame.load()
        pixels += frame.width * frame.height
        if pixels > max_pixels:
            raise TooManyPixels(f"the frames add up to more than {max_pixels} pixels")
        durations.append(int(frame.info.get("duration", img.info.get("duration", 100)) or 100))
    img.seek(0)
    icc = img.info.get("icc_profile")
    extra = {"duration": durations, "loop": int(img.info.get("loop", 0))}
    return _save(img, icc, save_all=True, **extra), img.size


# libwebp's VP8_ENC_ERROR_OUT_OF_MEMORY and VP8_ENC_ERROR_BITSTREAM_OUT_OF_MEMORY, as Pillow words them.
_ENCODER_OUT_OF_MEMORY = ("encoding error 1", "encoding error 2")


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
        if str(exc) in _ENCODER_OUT_OF_MEMORY:
            # The encoder ran into the process's memory ceiling: that is not a WebP limit of the image.
            raise MemoryError(str(exc)) from None
        raise _EncodeFailed(f"WebP encoding failed: {exc}", img.width, img.height) from None
    return out.getvalue()


def convert_stored(
    root: str,
    origin_key: str,
    target_stem: str,
    max_pixels: int,
    widths: Sequence[int] = (),
    durable: bool = True,
) -> Conversion:
    """Convert a stored original under `root` and write `{target_stem}.{ext}` and its variants there.

    Runs in a pool process. Deterministic: running it twice for one image writes the same keys
    with the same bytes. `durable`: each file fsync'd and renamed into place (where it is served);
    off for a scratch workspace (object storage), whose files are published afterwards.
    """
    store = Directory(root, durable=durable)
    return _store(store, convert(store.read(origin_key), max_pixels, widths), target_stem)


def convert_and_store(
    root: str, data: bytes, target_stem: str, max_pixels: int, widths: Sequence[int] = (), durable: bool = True
) -> Conversion:
    """Convert uploaded bytes and write the result and its variants under `root` (the ?sync=true path)."""
    return _store(Directory(root, durable=durable), convert(data, max_pixels, widths), target_stem)


def _store(store: Directory, result: Converted, target_stem: str) -> Conversion:
    key = f"{target_stem}.{file_suffix(result.format)}"
    variants = []
    for width, height, data in result.variants:
        variant = variant_key(key, width)
        variants.append(VariantFile(width, height, variant, store.write(variant, data)))
    size = store.write(key, result.data)
    return Conversion(key, result.format, size, result.width, result.height, tuple(variants), result.fallback_reason)
