"""Variants: the widths per type, the sizes an image yields, their names, and the codec making them."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from adapters.images.codec import convert
from core import variants
from core.settings import Settings, SettingsError
from tests import images

LIMIT = 50_000_000


def test_the_default_widths_are_the_contracts() -> None:
    widths = Settings().variant_widths
    assert [widths.for_type(t) for t in ("PRODUCT", "POST", "BANNER", "PROFILE", "USER_BACKGROUND", "CATEGORY")] == [
        (320, 640, 1280),
        (640, 1280),
        (1280, 1920),
        (64, 256),
        (64, 256),
        (256,),
    ]
    assert widths.for_type("product") == (320, 640, 1280) and widths.for_type("NEW_TYPE") == ()


def test_the_setting_overrides_named_types_and_keeps_the_others() -> None:
    widths = Settings.from_env({"IMAGES_VARIANT_WIDTHS": "product=1000, 100 ;PROFILE=; NEW_TYPE=50"}).variant_widths
    assert widths.for_type("PRODUCT") == (100, 1000)  # sorted
    assert widths.for_type("PROFILE") == () and widths.for_type("NEW_TYPE") == (50,)
    assert widths.for_type("POST") == (640, 1280)
    assert variants.parse_widths(str(widths)) == widths  # the documented default renders as a valid setting


@pytest.mark.parametrize(
    "raw", ["PRODUCT", "PRODUCT=abc", "PRODUCT=0", "PRODUCT=16384", "PRODUCT=1,2,3,4,5,6,7,8,9", "bad type=1"]
)
def test_a_bad_setting_fails_at_start_naming_the_variable(raw: str) -> None:
    with pytest.raises(SettingsError, match="IMAGES_VARIANT_WIDTHS"):
        Settings.from_env({"IMAGES_VARIANT_WIDTHS": raw})


def test_sizes_are_never_upscaled_and_keep_the_aspect() -> None:
    assert variants.sizes_for(1600, 1200, (1280, 320, 640)) == [(320, 240), (640, 480), (1280, 960)]
    assert variants.sizes_for(500, 100, (320, 640, 1280)) == [(320, 64)]
    assert variants.sizes_for(640, 480, (640,)) == []  # the full size itself is not a variant
    assert variants.sizes_for(5000, 3, (64,)) == [(64, 1)]  # at least one pixel high


def test_variant_names_sit_beside_the_full_size_and_lead_back_to_the_image() -> None:
    key = variants.variant_key("PRODUCT/2025/01/20/abc-1.webp", 320)
    assert key == "PRODUCT/2025/01/20/abc-1_320w.webp"
    assert variants.image_id_of("abc-1_320w") == variants.image_id_of("abc-1") == "abc-1"
    assert variants.image_id_of("abc_w") == "abc_w" and variants.image_id_of("abc_0w") == "abc_0w"


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_the_codec_makes_each_variant_from_the_same_decode() -> None:
    result = convert(images.noisy_jpeg(1600, 1200), LIMIT, (320, 640, 1280, 2000))
    assert (result.width, result.height) == (1600, 1200)
    assert [(w, h) for w, h, _ in result.variants] == [(320, 240), (640, 480), (1280, 960)]
    for w, h, data in result.variants:
        out = _open(data)
        assert (out.format, out.size, getattr(out, "n_frames", 1)) == ("WEBP", (w, h), 1)


@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_variants_are_turned_by_exif_like_the_full_size(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    src = Image.new("RGB", (640, 320), (0, 160, 0))
    src.paste((220, 0, 0), (0, 0, 320, 160))  # the stored top-left quarter is red
    result = convert(images.encode(src, "JPEG", quality=95, exif=exif), LIMIT, (64,))
    ((w, h, data),) = result.variants
    full = _open(result.data).convert("RGB")
    small = _open(data).convert("RGB")
    assert (w, h) == ((64, 128) if orientation >= 5 else (64, 32)) and small.size == (w, h)
    # The red quarter is where the full-size image shows it.
    for x, y in ((w // 4, h // 4), (3 * w // 4, h // 4), (w // 4, 3 * h // 4), (3 * w // 4, 3 * h // 4)):
        fx, fy = x * full.width // w, y * full.height // h
        assert (small.getpixel((x, y))[0] > 150) == (full.getpixel((fx, fy))[0] > 150)


def test_transparency_and_the_icc_profile_are_kept_in_variants() -> None:
    img = Image.new("RGBA", (400, 200), (0, 0, 255, 0))
    img.paste((255, 0, 0, 255), (0, 0, 200, 200))
    result = convert(images.encode(img, "PNG", icc_profile=images.srgb_icc()), LIMIT, (100,))
    ((_, _, data),) = result.variants
    small = _open(data)
    assert small.mode == "RGBA" and small.getpixel((90, 10))[3] == 0 and small.getpixel((10, 10))[3] == 255
    assert small.info.get("icc_profile") == images.srgb_icc()


def test_an_animated_inputs_variants_are_its_first_frame_still() -> None:
    frames = [Image.new("RGB", (400, 200), c) for c in ((255, 0, 0), (0, 0, 255))]
    gif = images.encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    result = convert(gif, LIMIT, (100,))
    assert _open(result.data).n_frames == 2  # the full size stays animated
    ((w, h, data),) = result.variants
    small = _open(data)
    assert (small.size, getattr(small, "n_frames", 1)) == ((100, 50), 1)
    r, g, b, *_ = small.convert("RGBA").getpixel((50, 25))
    assert r > 200 and b < 50  # the first frame's red


def test_pass_through_formats_and_kept_originals_have_no_variants() -> None:
    assert convert(images.mp4(), LIMIT, (64,)).variants == ()
    assert convert(b'<svg xmlns="http://www.w3.org/2000/svg" width="900" height="9"/>', LIMIT, (64,)).variants == ()
    too_wide = convert(images.encode(Image.new("L", (17000, 2)), "PNG"), LIMIT, (64,))
    assert too_wide.fallback_reason is not None and too_wide.variants == ()
