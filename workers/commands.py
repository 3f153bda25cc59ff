"""The upload-command agent's handler: an UPLOAD_REQUESTED on Kafka, uploaded like an HTTP upload.

Idempotent by imageId (and eventId): a repeated command never makes a second image. A command
that fails validation ends in IMAGE_FAILED on image-processed with the reason; one that is not
even an envelope is recorded as poison, so its partition keeps moving.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog

from adapters import fetch
from adapters.db.mariadb import MariaDbUnitOfWork
from adapters.ids import new_id
from core import fields, messages
from core.errors import DomainError
from core.events import UPLOAD_REQUESTED, Envelope, EnvelopeError
from core.settings import Settings
from core.upload import IncomingFile, UploadForm, upload
from workers.handlers import Resources, poison_id, record_poison, retrying, storing

log = structlog.get_logger("workers")
COMMANDS = "upload-commands"  # processed_events.consumer of the upload-command agent


async def handle_upload_command(res: Resources, key: bytes | None, raw: bytes | None) -> str:
    """Accept an UPLOAD_REQUESTED command: validate and store like HTTP, then the converter takes over.

    Idempotent by imageId (and eventId): a repeated command never makes a second image. A command
    that fails validation ends in IMAGE_FAILED on image-processed with the reason.
    """
    structlog.contextvars.clear_contextvars()
    try:
        env = Envelope.from_wire(raw or b"", topic="image-upload-requested", key=(key or b"").decode())
        if env.event_type != UPLOAD_REQUESTED:
            raise EnvelopeError(f"unexpected eventType {env.event_type}")
    except (EnvelopeError, KeyError, ValueError, UnicodeDecodeError) as exc:
        await record_poison(res, COMMANDS, poison_id("image-upload-requested", raw), f"bad command: {exc}")
        return "poison"
    given = env.payload.get("imageId")
    if not isinstance(given, str) or not given.strip():
        await record_poison(res, COMMANDS, env.event_id, "bad command: no imageId to answer to")
        return "poison"
    try:
        image_id = str(uuid.UUID(given))
    except ValueError:
        # Answerable: the sender is told on image-processed, under the id it sent (clipped to a key).
        await _reject(res, env.event_id, fields.clip(given, fields.IMAGE_ID), "VALIDATION_ERROR: imageId is not a UUID")
        return "rejected"
    structlog.contextvars.bind_contextvars(event_id=env.event_id, image_id=image_id)
    seen = await retrying(
        lambda: messages.command_seen(
            MariaDbUnitOfWork(res.pool), consumer=COMMANDS, event_id=env.event_id, image_id=image_id
        )
    )
    if seen:
        log.info("upload_command_skipped", reason="image already exists")
        return "skipped"
    try:
        # Stored under the id it names, so a try cut short by an outage of the storage is simply made again.
        await storing(lambda: _upload(res, env.payload, image_id))
    except DomainError as exc:
        await _reject(res, env.event_id, image_id, f"{exc.code}: {exc.message}")
        return "rejected"
    await retrying(
        lambda: messages.accept_command(
            MariaDbUnitOfWork(res.pool), consumer=COMMANDS, event_id=env.event_id, now=datetime.now(UTC)
        )
    )
    log.info("upload_command_accepted", category=env.payload.get("category"))
    return "accepted"


async def _upload(res: Resources, payload: dict[str, Any], image_id: str) -> None:
    """The command's file, uploaded like an HTTP `file` (the same rules, the id it names)."""
    file = IncomingFile(_str(payload.get("fileName")), await _command_content(res.settings, payload))
    await upload(
        UploadForm(_str(payload.get("uploaderId")), _str(payload.get("category")), single=[file]),
        references=res.references.data,
        settings=res.settings,
        ports=res.uploads,
        now=datetime.now(UTC),
        new_id=new_id,
        image_ids=[image_id],
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


async def _command_content(settings: Settings, payload: dict[str, Any]) -> bytes:
    content, source = payload.get("content"), payload.get("sourceUrl")
    if (content is None) == (source is None):
        raise fetch.FetchRefused("VALIDATION_ERROR", "give exactly one of content and sourceUrl")
    if content is not None:
        if not isinstance(content, str):
            raise fetch.FetchRefused("VALIDATION_ERROR", "content must be base64 text")
        try:
            return base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise fetch.FetchRefused("VALIDATION_ERROR", "content is not valid base64") from None
    return await fetch.fetch_source(str(source), settings)


async def _reject(res: Resources, event_id: str, image_id: str, reason: str) -> None:
    await retrying(
        lambda: messages.reject_command(
            MariaDbUnitOfWork(res.pool),
            consumer=COMMANDS,
            event_id=event_id,
            image_id=image_id,
            reason=reason,
            now=datetime.now(UTC),
            new_id=new_id,
        )
    )
    log.warning("upload_command_rejected", reason=reason)
