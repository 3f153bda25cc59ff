"""Images the tests generate (no fixtures on disk)."""

from __future__ import annotations

import io

import pillow_heif
from PIL import Image, ImageCms

pillow_heif.register_heif_opener()


def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kwargs)
    return out.getvalue()


def jpeg(width: int = 64, height: int = 32, colour: tuple[int, int, int] = (200, 30, 30), **kwargs: object) -> bytes:
    return encode(Image.new("RGB", (width, height), colour), "JPEG", quality=90, **kwargs)


def png(width: int = 64, height: int = 32, mode: str = "RGBA") -> bytes:
    return encode(Image.new(mode, (width, height)), "PNG")


def noisy_jpeg(width: int, height: int, seed: int = 1) -> bytes:
    """A photo-like JPEG (noise compresses like a photo, a flat colour does not)."""
    import random

    rnd = random.Random(seed)
    small = Image.frombytes("RGB", (width // 8, height // 8), rnd.randbytes((width // 8) * (height // 8) * 3))
    return encode(small.resize((width, height), Image.Resampling.BILINEAR), "JPEG", quality=85)


def marked(width: int = 64, height: int = 32) -> Image.Image:
    """Green image with a red 16x16 block in the stored top-left corner."""
    img = Image.new("RGB", (width, height), (0, 160, 0))
    img.paste((220, 0, 0), (0, 0, 16, 16))
    return img


def animated_gif(frames: int = 3) -> bytes:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    imgs = [Image.new("RGB", (32, 32), colours[i % len(colours)]) for i in range(frames)]
    return encode(imgs[0], "GIF", save_all=True, append_images=imgs[1:], duration=80, loop=0)


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def box(kind: bytes, payload: bytes = b"") -> bytes:
    """One ISO base media box: 32-bit size, four-character type, payload."""
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def mp4(major: bytes = b"isom", *, mdat: bytes = bytes(64)) -> bytes:
    """A structurally valid MP4 (MOV with major=b"qt  "): ftyp, moov with its mvhd and a track, mdat."""
    ftyp = box(b"ftyp", major + b"\x00\x00\x02\x00" + major + b"mp41")
    moov = box(b"moov", box(b"mvhd", bytes(100)) + box(b"trak", box(b"tkhd", bytes(84))))
    return ftyp + moov + box(b"mdat", mdat)
