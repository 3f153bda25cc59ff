"""Events and the one wire codec of CONTRACT section 5 (camelCase JSON envelopes)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.variants import NO_SIZES, Sizes

IMAGE_UPLOADED_TOPIC = "image-uploaded"
UPLOAD_REQUESTED_TOPIC = "image-upload-requested"
IMAGE_PROCESSED_TOPIC = "image-processed"

IMAGE_CHANGED = "IMAGE_CHANGED"
IMAGES_CHANGED = "IMAGES_CHANGED"
IMAGES_DELETED = "IMAGES_DELETED"
IMAGE_UPLOADED = "IMAGE_UPLOADED"
UPLOAD_REQUESTED = "UPLOAD_REQUESTED"
IMAGE_READY = "IMAGE_READY"
IMAGE_FAILED = "IMAGE_FAILED"


def topic_for(reference_type: str) -> str:
    """Return the change topic of a reference type: `topic_for("POST") == "post-image-changed"`."""
    return f"{reference_type.lower()}-image-changed"


def all_topics(reference_types: Sequence[str]) -> list[str]:
    """Return every topic the service writes or reads."""
    return [IMAGE_UPLOADED_TOPIC, UPLOAD_REQUESTED_TOPIC, IMAGE_PROCESSED_TOPIC] + [
        topic_for(code) for code in reference_types
    ]


def iso(at: datetime) -> str:
    """Render a UTC instant as ISO-8601 with a Z suffix and millisecond precision."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(raw: str) -> datetime:
    """Parse the timestamps `iso` writes (and any ISO-8601 with an offset)."""
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


class EnvelopeError(ValueError):
    """A message is not a well-formed envelope."""


@dataclass(frozen=True)
class Envelope:
    """One message: where it goes (topic, key) and what it says (the CONTRACT envelope)."""

    event_id: str
    event_type: str
    occurred_at: datetime
    topic: str
    key: str
    payload: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON object of CONTRACT section 5."""
        return {
            "eventId": self.event_id,
            "eventType": self.event_type,
            "timestamp": iso(self.occurred_at),
            "payload": self.payload,
        }

    def to_bytes(self) -> bytes:
        """Return the envelope as compact UTF-8 JSON."""
        return json.dumps(self.to_wire(), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_wire(cls, data: bytes | str | dict[str, Any], *, topic: str, key: str) -> Envelope:
        """Parse a message value; raise EnvelopeError when it is not an envelope."""
        try:
            obj = json.loads(data) if isinstance(data, bytes | str) else data
            if not isinstance(obj, dict) or not isinstance(obj.get("payload"), dict):
                raise EnvelopeError("envelope must be an object with an object payload")
            event_id, event_type = obj["eventId"], obj["eventType"]
            if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
                raise EnvelopeError("eventId and eventType must be non-empty strings")
            return cls(event_id, event_type, parse_iso(obj["timestamp"]), topic, key, obj["payload"])
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, EnvelopeError):
                raise
            raise EnvelopeError(f"not an envelope: {exc}") from None


@dataclass(frozen=True)
class SequencedImage:
    """An image of a multi-image reference, in list order."""

    image_id: str
    image_url: str
    seq_number: int
    sizes: Sizes = NO_SIZES


def image_changed(
    *,
    event_id: str,
    at: datetime,
    reference_type: str,
    reference_id: str,
    image_id: str,
    image_url: str,
    sizes: Sizes = NO_SIZES,
) -> Envelope:
    """Build IMAGE_CHANGED: a single-image reference now shows `image_id` (with its sizes and variants)."""
    payload = {"referenceId": reference_id, "imageId": image_id, "imageUrl": image_url, **sizes.to_wire()}
    return Envelope(event_id, IMAGE_CHANGED, at, topic_for(reference_type), reference_id, payload)


def images_changed(
    *,
    event_id: str,
    at: datetime,
    reference_type: str,
    reference_id: str,
    images: Sequence[SequencedImage],
) -> Envelope:
    """Build IMAGES_CHANGED: the complete ordered list of a multi-image reference."""
    payload = {
        "referenceId": reference_id,
        "images": [
            {
                "imageId": i.image_id,
                "imageUrl": i.image_url,
                "referenceId": reference_id,
                "seqNumber": i.seq_number,
                **i.sizes.to_wire(),
            }
            for i in images
        ],
    }
    return Envelope(event_id, IMAGES_CHANGED, at, topic_for(reference_type), reference_id, payload)


def images_deleted(*, event_id: str, at: datetime, reference_type: str, reference_id: str) -> Envelope:
    """Build IMAGES_DELETED: the reference has no images any more."""
    payload = {"referenceId": reference_id, "images": []}
    return Envelope(event_id, IMAGES_DELETED, at, topic_for(reference_type), reference_id, payload)


def image_processed(
    *,
    event_id: str,
    at: datetime,
    image_id: str,
    ready: bool,
    image_url: str,
    reason: str | None,
    sizes: Sizes = NO_SIZES,
) -> Envelope:
    """Build IMAGE_READY (with the image's sizes and variants) or IMAGE_FAILED on `image-processed`."""
    status = "READY" if ready else "FAILED"
    payload: dict[str, Any] = {"imageId": image_id, "status": status, "imageUrl": image_url, "reason": reason}
    if ready:
        payload.update(sizes.to_wire())
    event_type = IMAGE_READY if ready else IMAGE_FAILED
    return Envelope(event_id, event_type, at, IMAGE_PROCESSED_TOPIC, image_id, payload)


def image_uploaded(
    *,
    event_id: str,
    at: datetime,
    image_id: str,
    reference_type: str,
    uploader_id: str,
    origin_key: str | None,
    origin_format: str,
    origin_size: int,
    image_url: str,
) -> Envelope:
    """Build IMAGE_UPLOADED (internal, `image-uploaded`): what a worker needs to convert the stored original."""
    payload: dict[str, Any] = {
        "imageId": image_id,
        "category": reference_type,
        "uploaderId": uploader_id,
        "originKey": origin_key,
        "originFormat": origin_format,
        "originSize": origin_size,
        "imageUrl": image_url,
        "createdAt": at.astimezone(UTC).isoformat(),
    }
    return Envelope(event_id, IMAGE_UPLOADED, at, IMAGE_UPLOADED_TOPIC, image_id, payload)
