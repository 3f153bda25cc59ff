"""Pixel modes to what WebP holds (CONTRACT 4): RGB or RGBA, 8-bit, tones and transparency kept."""

from __future__ import annotations

import io

from PIL import Image, ImageCms

# Images whose tones are not 8-bit: scaled into 0..255 before encoding (WebP is 8-bit).
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_ALPHA_MODES = ("LA", "La", "PA", "RGBa", "RGBA")


def to_webp_mode(img: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """Return the image as RGB or RGBA with its tones and transparency kept, and the ICC profile to embed."""
    if (img.mode == "RGB" and "transparency" not in img.info) or img.mode == "RGBA":
        return img, icc
    if img.mode == "CMYK" and icc and _icc_space(icc) == b"CMYK":
        # WebP has no CMYK: convert through the embedded profile to sRGB so colours stay right.
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.createProfile("sRGB")
        return ImageCms.profileToProfile(img, src, srgb, outputMode="RGB"), None
    if img.mode in _WIDE_MODES:
        img = _scaled_to_8bit(img)
    elif img.mode == "La":  # premultiplied: Pillow converts it only to LA
        img = img.convert("LA")
    has_alpha = img.mode in _ALPHA_MODES or "transparency" in img.info
    # A grey or CMYK profile cannot describe the RGB pixels made here: drop it (sRGB is assumed).
    keep = icc if icc and _icc_space(icc) == b"RGB " else None
    return img.convert("RGBA" if has_alpha else "RGB"), keep


def _scaled_to_8bit(img: Image.Image) -> Image.Image:
    """Scale a 16-bit, 32-bit or float greyscale image into L, never clipping its tones.

    16-bit modes span 0..65535. For I and F the range is read from the pixels: within 0..255
    it is kept, within 0..1 (float) stretched by 255, within 0..65535 scaled as 16-bit, and any
    other range (negative values, 32-bit counts) is mapped from its minimum to its maximum.
    """
    source = img.convert("I") if img.mode.startswith("I;16") else img
    low, high = source.getextrema()
    assert isinstance(low, int | float) and isinstance(high, int | float)
    if img.mode.startswith("I;16") or (low >= 0 and 255 < high <= 65535):
        scale, offset = 255 / 65535, 0.0
    elif low >= 0 and high <= 1 and img.mode == "F":
        scale, offset = 255.0, 0.0
    elif low >= 0 and high <= 255:
        scale, offset = 1.0, 0.0
    else:
        scale = 255 / (high - low) if high > low else 0.0
        offset = -low * scale
    as_float = source.convert("F")
    return as_float.point(lambda v: v * scale + offset + 0.5).convert("L")


def _icc_space(icc: bytes) -> bytes:
    return icc[16:20]  # the profile header's data colour space ("RGB ", "GRAY", "CMYK", ...)
