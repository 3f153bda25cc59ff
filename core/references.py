"""Reference types and their confirm rules (CONTRACT section 1) as data."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ReferenceType(StrEnum):
    """What an image is confirmed to; the code doubles as the upload `category`."""

    PRODUCT = "PRODUCT"
    POST = "POST"
    BANNER = "BANNER"
    CATEGORY = "CATEGORY"
    PROFILE = "PROFILE"
    USER_BACKGROUND = "USER_BACKGROUND"


@dataclass(frozen=True)
class ReferenceRule:
    """How many images one reference of a type holds."""

    code: str
    name: str
    allows_multiple: bool
    max_images: int | None  # None: unlimited
    description: str | None = None

    def check_count(self, count: int) -> str | None:
        """Return the error code a list of `count` images breaks, or None."""
        if not self.allows_multiple and count > 1:
            return "NOT_ALLOWED_MULTIPLE_IMAGES"
        if self.max_images is not None and count > self.max_images:
            return "IMAGE_COUNT_EXCEEDED"
        return None


# The seed of schema.sql; the running service reads the table through the reference cache.
RULES: dict[ReferenceType, ReferenceRule] = {
    ReferenceType.PRODUCT: ReferenceRule("PRODUCT", "상품", True, 10, "Product images, ordered"),
    ReferenceType.POST: ReferenceRule("POST", "게시글", True, 20, "Post images, ordered"),
    ReferenceType.BANNER: ReferenceRule("BANNER", "배너", True, None, "Banner images, ordered, unlimited"),
    ReferenceType.CATEGORY: ReferenceRule("CATEGORY", "카테고리", False, 1, "One category image, replaced on confirm"),
    ReferenceType.PROFILE: ReferenceRule("PROFILE", "프로필", False, 1, "One profile image, replaced on confirm"),
    ReferenceType.USER_BACKGROUND: ReferenceRule(
        "USER_BACKGROUND", "사용자 배경", False, 1, "One background image, replaced on confirm"
    ),
}

EXTENSIONS: dict[str, str] = {
    "JPG": "JPEG Image",
    "JPEG": "JPEG Image",
    "PNG": "Portable Network Graphics",
    "GIF": "Graphics Interchange Format",
    "WEBP": "WebP Image",
    "AVIF": "AV1 Image File Format",
    "BMP": "Bitmap Image",
    "SVG": "Scalable Vector Graphics",
    "MP4": "MPEG-4 Video",
    "MOV": "QuickTime Movie",
    "HEIC": "High Efficiency Image File Format",
    "HEIF": "High Efficiency Image File Format",
}


@dataclass(frozen=True)
class ReferenceData:
    """A snapshot of the reference_types and extensions tables, as the cache holds it."""

    rules: dict[str, ReferenceRule]
    extensions: dict[str, str]

    def rule_for(self, code: str) -> ReferenceRule | None:
        """Return the rule of a reference type code (case-insensitive), or None when unknown."""
        return self.rules.get(code.strip().upper())
