"""Upload rules of CONTRACT section 2.1 that need no bytes: fields, file names, paths and URLs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from core import errors, events, fields
from core.events import Envelope
from core.images import Image, ImageStatus
from core.references import ReferenceData, ReferenceRule

ORIGINALS_DIR = "_originals"
WEBP = "WEBP"
# Stored as uploaded after a signature check (CONTRACT section 4); SVG only once sanitised.
PASS_THROUGH = frozenset({"MP4", "MOV", "SVG"})
# Limits on an SVG before it is sanitised (CONTRACT 4, issue 13): a sanitiser's work grows with
# nesting (100,000 nested <g> in 700 KB took one process past 9.9 GB). Real drawings stay far
# inside these: editors nest a few dozen levels; a detailed map has tens of thousands of elements.
SVG_MAX_BYTES = 4 * 1024 * 1024
SVG_MAX_DEPTH = 64
SVG_MAX_ELEMENTS = 50_000


def require_uploader(raw: str | None) -> str:
    """Return the trimmed uploaderId; raise VALIDATION_ERROR when missing or blank."""
    if raw is None or not raw.strip():
        raise errors.ValidationError("uploaderId is required")
    return fields.require_fits("uploaderId", raw.strip(), fields.UPLOADER_ID)


def require_reference_type(raw: str | None, data: ReferenceData) -> ReferenceRule:
    """Return the rule of the form's `category` (a reference type, any case); raise REFERENCE_TYPE_NOT_FOUND."""
    known = ", ".join(sorted(data.rules))
    if raw is None or not raw.strip():
        raise errors.ReferenceTypeNotFound(f"category is required: one of {known}")
    fields.require_fits("category", raw.strip(), fields.CATEGORY)
    rule = data.rule_for(raw)
    if rule is None:
        raise errors.ReferenceTypeNotFound(f"unknown category {raw.strip()!r}: one of {known}")
    return rule


def extension_of(file_name: str | None, data: ReferenceData) -> str:
    """Return the upper-cased extension of a client file name, or raise the contract's code.

    `photo`, `photo.` and `.jpg` have no extension; `a.php.jpg` is a double extension.
    """
    if file_name is None or not file_name.strip():
        raise errors.InvalidFileName("file name is blank")
    fields.require_fits("file name", file_name, fields.FILE_NAME)
    if ".." in file_name or "/" in file_name or "\\" in file_name:
        raise errors.InvalidFileName("file name must not contain '..', '/' or '\\'")
    name = file_name.strip()
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or not ext:
        raise errors.FileExtensionNotFound(f"file name {name!r} has no extension")
    if "." in stem:
        raise errors.InvalidFileExtension(f"file name {name!r} has more than one extension")
    code = ext.upper()
    if code not in data.extensions:
        raise errors.InvalidFileExtension(f"extension {ext!r} is not supported")
    return code


def file_suffix(format_code: str) -> str:
    """Return the file suffix stored for a format code (JPEG is stored as .jpg)."""
    return "jpg" if format_code == "JPEG" else format_code.lower()


def image_key(reference_type: str, at: datetime, image_id: str, format_code: str) -> str:
    """Return the storage key `{CATEGORY}/{YYYY}/{MM}/{DD}/{uuid}.{ext}` (UTC date, guide 6.5)."""
    day = at.astimezone(UTC)
    return f"{reference_type}/{day:%Y/%m/%d}/{image_id}.{file_suffix(format_code)}"


def original_key(reference_type: str, at: datetime, image_id: str, format_code: str) -> str:
    """Return where the uploaded original is kept until conversion succeeds."""
    return f"{ORIGINALS_DIR}/{image_key(reference_type, at, image_id, format_code)}"


# What a stored file is served as, by its suffix (Python 3.11's mimetypes knows neither webp nor
# avif nor heic): the api's /images/ route and the objects written to S3 say the same.
CONTENT_TYPES = {
    "webp": "image/webp",
    "jpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "avif": "image/avif",
    "heic": "image/heic",
    "heif": "image/heif",
    "svg": "image/svg+xml",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
}


def content_type(key: str) -> str:
    """Return the media type a stored file is served with."""
    return CONTENT_TYPES.get(key.rpartition(".")[2].lower(), "application/octet-stream")


def image_url(base_url: str, key: str) -> str:
    """Return the public URL of a storage key."""
    return base_url + key


@dataclass(frozen=True)
class StoredOriginal:
    """An accepted upload whose original is durably on disk, ready to be recorded."""

    image_id: str
    reference_type: str
    uploader_id: str
    origin_key: str | None  # None: a sync upload whose original was not kept
    origin_format: str
    origin_size: int
    width: int
    height: int


def stored_format(origin_format: str) -> str:
    """Return the format an upload will be stored as: WebP, or itself for pass-through formats."""
    return origin_format if origin_format in PASS_THROUGH else WEBP


def new_image(original: StoredOriginal, *, base_url: str, at: datetime, status: ImageStatus) -> Image:
    """Return the images row of an accepted upload; its URL names the file it will become.

    That is the WebP for images and the file itself for MP4/MOV/SVG (known from the sniffed bytes),
    so the URL given at upload is final; only a WebP encoding failure corrects it later (CONTRACT 2.1).
    """
    key = image_key(original.reference_type, at, original.image_id, stored_format(original.origin_format))
    return Image(
        image_id=original.image_id,
        status=status,
        reference_type=original.reference_type,
        image_url=image_url(base_url, key),
        uploader_id=original.uploader_id,
        created_at=at,
        updated_at=at,
    )


def uploaded_event(original: StoredOriginal, image: Image, *, event_id: str) -> Envelope:
    """The IMAGE_UPLOADED of a stored original (events.image_uploaded, from the upload's records)."""
    return events.image_uploaded(
        event_id=event_id,
        at=image.created_at,
        image_id=original.image_id,
        reference_type=original.reference_type,
        uploader_id=original.uploader_id,
        origin_key=original.origin_key,
        origin_format=original.origin_format,
        origin_size=original.origin_size,
        image_url=image.image_url,
    )
