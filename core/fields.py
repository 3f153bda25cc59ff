"""The longest value each string a request or command carries may have: the column that keeps it.

A value over its column would reach MariaDB and fail there ("Data too long", a 500); checked
here, it is a VALIDATION_ERROR on HTTP and Kafka alike (CONTRACT 2.1, 2.2; issue 13). Lengths are
in characters, as MariaDB counts a utf8mb4 VARCHAR.
"""

from __future__ import annotations

from core import errors

UPLOADER_ID = 255  # images.uploader_id
CATEGORY = 32  # reference_types.code
FILE_NAME = 255  # a client's file name (the longest name most file systems allow)
REFERENCE_ID = 200  # images.reference_id, image_sequence.reference_id
IMAGE_ID = 255  # images.image_id
IDEMPOTENCY_KEY = 255  # the Idempotency-Key header (CONTRACT 2.1)
REASON = 1000  # status_history.reason, processed_events.detail


def require_fits(what: str, value: str, limit: int) -> str:
    """Return `value`; raise VALIDATION_ERROR when it is longer than `limit` characters."""
    if len(value) > limit:
        raise errors.ValidationError(f"{what} is longer than {limit} characters")
    return value


def clip(text: str, limit: int = REASON) -> str:
    """Return `text` cut to `limit` characters (a reason written to a bounded column)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
