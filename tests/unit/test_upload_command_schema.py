from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from core.events import UPLOAD_REQUESTED, UPLOAD_REQUESTED_TOPIC, Envelope
from workers.__main__ import upload_command

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "upload-command.schema.json").read_text())


def command(**payload: object) -> dict:
    image_id = str(uuid.uuid4())
    body = {"imageId": image_id, "category": "PRODUCT", "uploaderId": "svc", "fileName": "a.jpg"} | payload
    return Envelope(
        str(uuid.uuid4()), UPLOAD_REQUESTED, datetime.now(UTC), UPLOAD_REQUESTED_TOPIC, image_id, body
    ).to_wire()


def test_the_cli_command_matches_the_schema() -> None:
    """What `python -m workers send-upload` sends, built by the CLI's own function."""
    sent = upload_command(b"\xff\xd8 a jpeg", category="PRODUCT", uploader_id="svc-1", file_name="a.jpg")
    jsonschema.validate(json.loads(sent.to_bytes()), SCHEMA)
    assert (sent.topic, sent.key) == ("image-upload-requested", sent.payload["imageId"])
    chosen = upload_command(b"x", category="POST", uploader_id="s", file_name="b.png", image_id=str(uuid.uuid4()))
    jsonschema.validate(json.loads(chosen.to_bytes()), SCHEMA)


def test_a_command_naming_its_source_by_url_matches_the_schema() -> None:
    jsonschema.validate(command(sourceUrl="https://cdn.example.com/a.jpg"), SCHEMA)


@pytest.mark.parametrize("payload", [{}, {"content": "x", "sourceUrl": "https://a/b.jpg"}])
def test_exactly_one_source_is_required(payload: dict) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(command(**payload), SCHEMA)
