"""docs/events.schema.json describes what core.events builds, and refuses what it must not allow."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from core import events
from core.variants import Sizes, Variant

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "events.schema.json").read_text())
T = datetime(2025, 1, 20, 10, 0, tzinfo=UTC)
SIZES = Sizes(1000, 500, (Variant(320, 160, "P/a_320w.webp", "http://i/P/a_320w.webp", 5),))
EVENT = "5b0c3c36-0000-4000-8000-000000000001"


def wire(envelope: events.Envelope) -> dict:
    return json.loads(envelope.to_bytes())


BUILT = {
    "IMAGE_CHANGED": events.image_changed(
        event_id=EVENT, at=T, reference_type="PROFILE", reference_id="u", image_id="a", image_url="x", sizes=SIZES
    ),
    "IMAGES_CHANGED": events.images_changed(
        event_id=EVENT,
        at=T,
        reference_type="PRODUCT",
        reference_id="p",
        images=[events.SequencedImage("a", "x", 0, SIZES), events.SequencedImage("b", "y", 1)],
    ),
    "IMAGES_DELETED": events.images_deleted(event_id=EVENT, at=T, reference_type="POST", reference_id="p"),
    "IMAGE_READY": events.image_processed(
        event_id=EVENT, at=T, image_id="a", ready=True, image_url="x", reason=None, sizes=SIZES
    ),
    "IMAGE_FAILED": events.image_processed(
        event_id=EVENT, at=T, image_id="a", ready=False, image_url="x", reason="undecodable"
    ),
}


@pytest.mark.parametrize("event_type", sorted(BUILT))
def test_every_event_the_service_builds_matches_the_schema(event_type: str) -> None:
    jsonschema.validate(wire(BUILT[event_type]), SCHEMA)


@pytest.mark.parametrize(
    ("event_type", "breaks"),
    [
        ("IMAGE_CHANGED", lambda p: p.pop("imageUrl")),  # an original field is still required
        ("IMAGE_CHANGED", lambda p: p.pop("variants")),  # and so are the additions
        ("IMAGES_CHANGED", lambda p: p["images"][0].pop("seqNumber")),
        ("IMAGES_CHANGED", lambda p: p["images"][0]["variants"][0].pop("imageUrl")),
        ("IMAGE_READY", lambda p: p.update(width="wide")),
        ("IMAGES_DELETED", lambda p: p["images"].append({})),
    ],
)
def test_the_schema_refuses_a_payload_missing_what_consumers_rely_on(event_type: str, breaks) -> None:  # type: ignore[no-untyped-def]
    message = wire(BUILT[event_type])
    breaks(message["payload"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(message, SCHEMA)
