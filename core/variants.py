"""Variants (CONTRACT section 4, issue 17): the smaller widths made beside each full-size WebP.

Pure rules: which widths a reference type gets (defaults, and the `IMAGES_VARIANT_WIDTHS`
override), which sizes an image of a given size yields (never upscaled, aspect kept), and how
a variant's file is named (`{uuid}_{width}w.webp` beside `{uuid}.webp`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_WIDTHS: Mapping[str, tuple[int, ...]] = {
    "PRODUCT": (320, 640, 1280),
    "POST": (640, 1280),
    "BANNER": (1280, 1920),
    "PROFILE": (64, 256),
    "USER_BACKGROUND": (64, 256),
    "CATEGORY": (256,),
}
MAX_WIDTHS_PER_TYPE = 8  # each is one more resize and encode per image: bounded work per upload
MAX_WIDTH = 16383  # WebP's largest dimension
_VARIANT_STEM = re.compile(r"^(?P<image_id>.+)_(?P<width>[1-9][0-9]{0,4})w$")


@dataclass(frozen=True)
class VariantFile:
    """A variant a conversion wrote: its size in pixels, its storage key and its length in bytes."""

    width: int
    height: int
    key: str
    size: int


@dataclass(frozen=True)
class Variant:
    """One stored variant of an image (a row of `image_variants`)."""

    width: int
    height: int
    key: str  # storage key, beside the full-size file
    image_url: str
    size: int


@dataclass(frozen=True)
class Sizes:
    """What clients read of an image's pixels: its full size and its variants, ascending."""

    width: int | None
    height: int | None
    variants: tuple[Variant, ...] = ()

    def to_wire(self) -> dict[str, object]:
        """Return the `width`, `height` and `variants` fields of an image object (CONTRACT 2.6, 5)."""
        return {
            "width": self.width,
            "height": self.height,
            "variants": [{"width": v.width, "height": v.height, "imageUrl": v.image_url} for v in self.variants],
        }


NO_SIZES = Sizes(None, None)


@dataclass(frozen=True)
class VariantWidths:
    """The widths per reference type; a type not listed gets none."""

    by_type: tuple[tuple[str, tuple[int, ...]], ...]

    def for_type(self, reference_type: str) -> tuple[int, ...]:
        """Return the widths of `reference_type`, ascending (empty when it has none)."""
        return dict(self.by_type).get(reference_type.upper(), ())

    def __str__(self) -> str:
        return ";".join(f"{code}={','.join(map(str, widths))}" for code, widths in self.by_type)


DEFAULT_VARIANT_WIDTHS = VariantWidths(tuple(DEFAULT_WIDTHS.items()))


def parse_widths(raw: str) -> VariantWidths:
    """Parse `PRODUCT=320,640;PROFILE=` over the defaults: a named type takes the given widths
    (none when empty), every other type keeps its default. Raise ValueError on a bad entry."""
    widths = dict(DEFAULT_WIDTHS)
    for entry in filter(None, (part.strip() for part in raw.split(";"))):
        code, eq, values = entry.partition("=")
        code = code.strip().upper()
        if not eq or not re.fullmatch(r"[A-Z][A-Z0-9_]{0,31}", code):
            raise ValueError(f"expected TYPE=W1,W2,... entries separated by ';', got {entry!r}")
        try:
            parsed = sorted({int(v) for v in values.split(",") if v.strip()})
        except ValueError:
            raise ValueError(f"widths of {code} must be whole numbers") from None
        if any(not 1 <= w <= MAX_WIDTH for w in parsed):
            raise ValueError(f"widths of {code} must be within 1..{MAX_WIDTH}")
        if len(parsed) > MAX_WIDTHS_PER_TYPE:
            raise ValueError(f"{code} has more than {MAX_WIDTHS_PER_TYPE} widths")
        widths[code] = tuple(parsed)
    return VariantWidths(tuple(widths.items()))


def sizes_for(width: int, height: int, widths: Sequence[int]) -> list[tuple[int, int]]:
    """Return the (width, height) of each variant of a `width` x `height` image, ascending.

    Only widths smaller than the image: a variant is never upscaled (nor a copy of the full
    size). The height keeps the aspect ratio, rounded, and is at least 1 pixel.
    """
    return [(w, max(1, round(height * w / width))) for w in sorted(set(widths)) if w < width]


def variant_key(full_key: str, width: int) -> str:
    """Return the storage key of a variant: beside the full-size file, `{uuid}_{width}w.webp`."""
    stem = full_key.rsplit(".", 1)[0]
    return f"{stem}_{width}w.webp"


def image_id_of(file_stem: str) -> str:
    """Return the image id a stored file's stem belongs to (`abc_320w` -> `abc`, `abc` -> `abc`)."""
    match = _VARIANT_STEM.match(file_stem)
    return match["image_id"] if match else file_stem
