from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from core import events
from core.events import Envelope, EnvelopeError
from core.variants import Sizes, Variant

T = datetime(2025, 1, 20, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("code", "topic"),
    [("PRODUCT", "product-image-changed"), ("USER_BACKGROUND", "user_background-image-changed")],
)
def test_topic_is_lower_cased_type_plus_image_changed(code: str, topic: str) -> None:
    assert events.topic_for(code) == topic


SIZES = Sizes(1600, 900, (Variant(640, 360, "P/a_640w.webp", "u/a_640w.webp", 9),))
WIRE_SIZES = {"width": 1600, "height": 900, "variants": [{"width": 640, "height": 360, "imageUrl": "u/a_640w.webp"}]}


def test_images_changed_matches_the_contract_shape() -> None:
    env = events.images_changed(
        event_id="e1",
        at=T,
        reference_type="PRODUCT",
        reference_id="p1",
        images=[events.SequencedImage("a", "u/a", 0, SIZES), events.SequencedImage("b", "u/b", 1)],
    )
    assert (env.topic, env.key) == ("product-image-changed", "p1")
    no_sizes = {"width": None, "height": None, "variants": []}
    assert json.loads(env.to_bytes()) == {
        "eventId": "e1",
        "eventType": "IMAGES_CHANGED",
        "timestamp": "2025-01-20T10:00:00.000Z",
        "payload": {
            "referenceId": "p1",
            "images": [
                {"imageId": "a", "imageUrl": "u/a", "referenceId": "p1", "seqNumber": 0, **WIRE_SIZES},
                {"imageId": "b", "imageUrl": "u/b", "referenceId": "p1", "seqNumber": 1, **no_sizes},
            ],
        },
    }


def test_image_changed_and_images_deleted_payloads() -> None:
    one = events.image_changed(
        event_id="e", at=T, reference_type="PROFILE", reference_id="u", image_id="i", image_url="x", sizes=SIZES
    )
    gone = events.images_deleted(event_id="e", at=T, reference_type="POST", reference_id="p")
    assert one.payload == {"referenceId": "u", "imageId": "i", "imageUrl": "x", **WIRE_SIZES}
    assert (gone.event_type, gone.payload) == ("IMAGES_DELETED", {"referenceId": "p", "images": []})


def test_image_ready_carries_the_sizes_and_image_failed_does_not() -> None:
    ready = events.image_processed(
        event_id="e", at=T, image_id="i", ready=True, image_url="u", reason=None, sizes=SIZES
    )
    failed = events.image_processed(event_id="e", at=T, image_id="i", ready=False, image_url="u", reason="bad")
    assert ready.payload == {"imageId": "i", "status": "READY", "imageUrl": "u", "reason": None, **WIRE_SIZES}
    assert failed.payload == {"imageId": "i", "status": "FAILED", "imageUrl": "u", "reason": "bad"}


def test_envelope_round_trips_through_the_wire() -> None:
    env = events.image_processed(event_id="e", at=T, image_id="i", ready=True, image_url="u", reason=None)
    back = Envelope.from_wire(env.to_bytes(), topic=env.topic, key=env.key)
    assert back == env


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b'{"eventId": "e"}',
        b'{"eventId": 1, "eventType": "X", "timestamp": "2025-01-01T00:00:00Z", "payload": {}}',
    ],
)
def test_malformed_envelopes_raise_envelope_error(raw: bytes) -> None:
    with pytest.raises(EnvelopeError):
        Envelope.from_wire(raw, topic="t", key="k")
