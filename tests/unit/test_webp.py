"""The Pillow codec on tiny generated images (CONTRACT section 4)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from adapters import formats
from adapters.webp import ConversionFailed, DimensionsExceeded, convert
from tests import images

LIMIT = 50_000_000


def decoded(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize(
    ("fmt", "kwargs"),
    [("JPEG", {}), ("PNG", {}), ("GIF", {}), ("BMP", {}), ("WEBP", {"lossless": True}), ("AVIF", {}), ("HEIF", {})],
)
def test_every_raster_input_becomes_a_webp_of_the_same_size(fmt: str, kwargs: dict[str, object]) -> None:
    data = images.encode(Image.new("RGB", (48, 20), (10, 120, 200)), fmt, **kwargs)
    result = convert(data, LIMIT)
    assert result.format == "WEBP"
    out = decoded(result.data)
    assert (out.format, out.size) == ("WEBP", (48, 20))


# Where the stored top-left pixel is displayed for each EXIF orientation.
CORNER = {1: "tl", 2: "tr", 3: "br", 4: "bl", 5: "tl", 6: "tr", 7: "br", 8: "bl"}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation: int) -> None:
    src = images.marked(64, 32)
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = decoded(convert(images.encode(src, "JPEG", quality=95, exif=exif), LIMIT).data).convert("RGB")
    assert out.size == ((32, 64) if orientation >= 5 else (64, 32))
    w, h = out.size
    points = {"tl": (3, 3), "tr": (w - 4, 3), "bl": (3, h - 4), "br": (w - 4, h - 4)}
    red = [name for name, xy in points.items() if out.getpixel(xy)[0] > 150 and out.getpixel(xy)[1] < 100]
    assert red == [CORNER[orientation]]


def test_gps_and_other_exif_are_stripped() -> None:
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    exif[0x8825] = {1: "N", 2: (37.0, 33.0, 0.0)}  # GPS IFD
    out = decoded(convert(images.encode(images.marked(), "JPEG", exif=exif), LIMIT).data)
    assert "exif" not in out.info and len(out.getexif()) == 0


def test_icc_profile_is_kept() -> None:
    icc = images.srgb_icc()
    out = decoded(convert(images.encode(images.marked(), "JPEG", icc_profile=icc), LIMIT).data)
    assert out.info.get("icc_profile") == icc


def test_animated_gif_stays_animated() -> None:
    out = decoded(convert(images.animated_gif(3), LIMIT).data)
    assert (out.format, getattr(out, "n_frames", 1)) == ("WEBP", 3)


def test_sixty_megapixel_png_is_refused() -> None:
    data = images.png(10_000, 6_000, mode="1")
    with pytest.raises(DimensionsExceeded):
        convert(data, LIMIT)
    with pytest.raises(formats.TooManyPixels):
        formats.read_dimensions(data, LIMIT)


def test_truncated_jpeg_fails() -> None:
    data = images.noisy_jpeg(256, 256)
    with pytest.raises(ConversionFailed, match="undecodable"):
        convert(data[: len(data) // 2], LIMIT)


def test_svg_with_script_is_sanitised() -> None:
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="steal()"><script>steal()</script>'
        b'<rect width="5" height="5" onclick="x()"/><image href="https://evil.example/x.png"/></svg>'
    )
    result = convert(svg, LIMIT)
    assert result.format == "SVG"
    for needle in (b"script", b"steal", b"onload", b"onclick", b"evil.example", b"x.png"):
        assert needle not in result.data
    assert b"<rect" in result.data


def test_unparsable_svg_fails() -> None:
    with pytest.raises(ConversionFailed):
        convert(b"<svg xmlns='http://www.w3.org/2000/svg'><rect", LIMIT)


@pytest.mark.parametrize(("head", "fmt"), [(b"\x00\x00\x00\x18ftypmp42", "MP4"), (b"\x00\x00\x00\x14ftypqt  ", "MOV")])
def test_video_passes_through_after_its_signature_check(head: bytes, fmt: str) -> None:
    data = head + b"\x00" * 64
    result = convert(data, LIMIT)
    assert (result.format, result.data) == (fmt, data)


def test_decodable_but_unencodable_input_keeps_the_original() -> None:
    data = images.png(20_000, 4, mode="RGB")  # wider than WebP's 16383 px
    result = convert(data, LIMIT)
    assert (result.format, result.data) == ("PNG", data)
    assert result.fallback_reason and "WebP" in result.fallback_reason


def test_random_bytes_are_not_a_supported_format() -> None:
    with pytest.raises(ConversionFailed):
        convert(b"hello, not an image" * 10, LIMIT)


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (images.jpeg(), "JPEG"),
        (images.png(), "PNG"),
        (images.animated_gif(), "GIF"),
        (images.encode(Image.new("RGB", (4, 4)), "BMP"), "BMP"),
        (images.encode(Image.new("RGB", (4, 4)), "WEBP"), "WEBP"),
        (images.encode(Image.new("RGB", (4, 4)), "AVIF"), "AVIF"),
        (images.encode(Image.new("RGB", (4, 4)), "HEIF"), "HEIC"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (b"GIF8", None),
        (b"%PDF-1.7", None),
    ],
)
def test_format_is_sniffed_from_the_bytes(data: bytes, fmt: str | None) -> None:
    assert formats.sniff(data[:4096]) == fmt


def test_heif_orientation_is_applied_once_not_twice() -> None:
    # pillow-heif rotates on decode and resets the EXIF tag; exif_transpose must then do nothing.
    exif = Image.Exif()
    exif[0x0112] = 6
    data = images.encode(images.marked(64, 32), "HEIF", exif=exif.tobytes(), quality=90)
    out = decoded(convert(data, LIMIT).data).convert("RGB")
    assert out.size == (32, 64)
    r, g, _ = out.getpixel((out.width - 4, 3))
    assert r > 150 and g < 100, "the stored top-left corner is displayed top-right, as for JPEG orientation 6"
