"""The Pillow codec on tiny generated images (CONTRACT section 4)."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageCms

from adapters.images import headers as formats
from adapters.images.codec import ConversionFailed, DimensionsExceeded, convert
from adapters.images.modes import to_webp_mode
from adapters.images.svg import InvalidSvg, check_svg_bounds
from core import upload_rules
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


@pytest.mark.parametrize(("major", "fmt"), [(b"mp42", "MP4"), (b"isom", "MP4"), (b"qt  ", "MOV")])
def test_video_passes_through_after_its_structure_check(major: bytes, fmt: str) -> None:
    data = images.mp4(major)
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


def _ramp(mode: str) -> Image.Image:
    """A 256 x 1 greyscale ramp in `mode`, spanning the mode's whole range."""
    if mode.startswith("I;16"):
        order = "big" if mode == "I;16B" else "little"
        raw = b"".join((v * 257).to_bytes(2, order) for v in range(256))  # type: ignore[arg-type]
        return Image.frombytes(mode, (256, 1), raw)
    ramp = Image.frombytes("L", (256, 1), bytes(range(256)))
    if mode == "I":
        return ramp.convert("I").point(lambda v: v * 257)  # 0..65535, as a 16-bit PNG opens in some versions
    if mode == "F":
        return ramp.convert("F").point(lambda v: v / 255)  # 0.0..1.0
    return ramp.convert(mode)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "La", "P", "PA", "I;16", "I;16L", "I;16B", "I", "F", "CMYK", "YCbCr"])
def test_every_pixel_mode_becomes_rgb_or_rgba_with_its_tones(mode: str) -> None:
    source = (
        _ramp(mode) if mode != "La" else Image.frombytes("La", (256, 1), bytes(b for v in range(256) for b in (v, 255)))
    )
    out, _ = to_webp_mode(source, None)
    grey = out.convert("L")
    assert out.mode in ("RGB", "RGBA")
    low, high = grey.getextrema()  # type: ignore[misc]
    assert low <= 3 and high >= 252
    if mode not in ("1", "CMYK"):  # a ramp stays a ramp: the middle stays in the middle, nothing clipped
        assert 120 <= grey.getpixel((128, 0)) <= 136  # type: ignore[operator]


def test_sixteen_bit_grey_png_is_scaled_not_clipped() -> None:
    data = images.encode(_ramp("I;16"), "PNG")
    result = convert(data, LIMIT)
    grey = decoded(result.data).convert("L")
    low, high = grey.getextrema()  # type: ignore[misc]
    assert low <= 3 and high >= 252  # clipping made it all white (issue 13)
    assert 110 <= grey.getpixel((128, 0)) <= 146  # type: ignore[operator]


def test_transparency_of_palette_grey_and_rgb_images_is_kept() -> None:
    for img in (Image.new("P", (8, 8), 0), Image.new("L", (8, 8), 0), Image.new("RGB", (8, 8), (0, 0, 0))):
        img.info["transparency"] = 0 if img.mode != "RGB" else (0, 0, 0)
        out, _ = to_webp_mode(img, None)
        assert out.mode == "RGBA" and out.getpixel((0, 0))[3] == 0  # type: ignore[index]


def test_a_grey_icc_profile_is_not_attached_to_rgb_output() -> None:
    grey = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()[:16] + b"GRAY" + bytes(108)
    _, icc = to_webp_mode(Image.new("L", (4, 4)), grey)
    assert icc is None


def test_animated_input_keeps_each_frames_duration() -> None:
    frames = [Image.new("RGB", (16, 16), (i * 40, 0, 0)) for i in range(5)]
    data = images.encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=[20, 40, 60, 80, 100])
    out = decoded(convert(data, LIMIT).data)
    durations = []
    for i in range(out.n_frames):
        out.seek(i)
        out.load()
        durations.append(out.info["duration"])
    assert durations == [20, 40, 60, 80, 100]


def test_animated_input_over_the_pixel_limit_summed_over_frames_fails() -> None:
    frames = [Image.new("RGB", (100, 100), (i * 8, 0, 0)) for i in range(30)]  # 300,000 pixels in all
    data = images.encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(DimensionsExceeded):
        convert(data, 200_000)
    with pytest.raises(formats.TooManyPixels, match="30 frames"):
        formats.read_dimensions(data, 200_000)
    assert formats.read_dimensions(data, 300_000).frames == 30


def _nested_svg(depth: int) -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg">' + b"<g>" * depth + b"</g>" * depth + b"</svg>"


@pytest.mark.parametrize(
    ("svg", "reason"),
    [
        (_nested_svg(upload_rules.SVG_MAX_DEPTH), "deeper"),  # the <svg> root is one more level
        (_nested_svg(1_500), "deeper"),  # once a RecursionError and a 500 on ?sync=true
        (_nested_svg(100_000), "deeper"),  # once 9.9 GB in one conversion process
        (b'<svg xmlns="http://www.w3.org/2000/svg">' + b"<g/>" * upload_rules.SVG_MAX_ELEMENTS + b"</svg>", "elements"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><!--' + b"x" * upload_rules.SVG_MAX_BYTES + b"--></svg>", "bytes"),
    ],
)
def test_svg_past_a_limit_fails_before_it_is_sanitised(svg: bytes, reason: str) -> None:
    with pytest.raises(ConversionFailed, match=reason):
        convert(svg, LIMIT)


def test_svg_within_the_limits_is_sanitised() -> None:
    result = convert(_nested_svg(upload_rules.SVG_MAX_DEPTH - 1), LIMIT)
    assert result.format == "SVG" and result.data.count(b"<g") == upload_rules.SVG_MAX_DEPTH - 1


def test_svg_that_declares_entities_is_refused_by_the_parser() -> None:
    lol = b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    with pytest.raises(InvalidSvg, match="not acceptable XML"):
        check_svg_bounds(lol + b'<svg xmlns="http://www.w3.org/2000/svg"><text>&b;</text></svg>')


@pytest.mark.parametrize(
    "data", [b"\0\0\0\x08free<?php system($_GET['c']); ?>", b"\0\0\0\x18ftypisom\0\0\0\0isommp41<html></html>"]
)
def test_a_file_that_only_starts_like_a_video_fails(data: bytes) -> None:
    with pytest.raises(ConversionFailed, match="container"):
        convert(data, LIMIT)
