"""What the agents do with one message, free of Faust so tests can call it directly.

Every handler returns normally for every input: a poison message (bad payload, missing row or
file) is recorded and skipped so its partition keeps moving; only an outage of MariaDB is waited
out (retried with backoff), because skipping then would lose work. `guarded()` is the last line:
an error nobody foresaw is logged and recorded, and the stream goes on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiomysql
import structlog

from adapters import conversions, fetch
from adapters.converter import ConverterPool
from adapters.ids import new_id
from adapters.ingest import IncomingFile, ingest
from adapters.mariadb import MariaDbUnitOfWork
from adapters.reference_cache import ReferenceCache
from adapters.retry import is_transient, until_available
from adapters.storage import FileStore, GroupWriter
from adapters.webp import ConversionFailed, convert_stored
from core import fields, services, uploads
from core.errors import DomainError
from core.events import IMAGE_UPLOADED, UPLOAD_REQUESTED, Envelope, EnvelopeError, image_processed
from core.settings import Settings
from workers import metrics

log = structlog.get_logger("workers")
COMMANDS = "upload-commands"  # processed_events.consumer of the upload-command agent


@dataclass
class Resources:
    """What the handlers share in one worker process; built by the worker's startup hook."""

    settings: Settings
    pool: aiomysql.Pool
    references: ReferenceCache
    store: FileStore
    converter: ConverterPool
    writer: GroupWriter = field(init=False)  # the upload commands' durable writes

    def __post_init__(self) -> None:
        self.writer = GroupWriter(self.store)


def _poison_id(topic: str, raw: bytes | None) -> str:
    # A message that is not an envelope has no eventId: derive a stable one from its bytes.
    return str(uuid.UUID(bytes=hashlib.sha256(topic.encode() + (raw or b"")).digest()[:16]))


async def record_poison(res: Resources, consumer: str, event_id: str, reason: str) -> None:
    """Record a message that can never be processed, so it is skipped (and visible) from now on."""

    async def record() -> None:
        async with MariaDbUnitOfWork(res.pool) as uow:
            if not await uow.processed.seen(consumer, event_id):
                await uow.processed.record(
                    consumer, event_id, outcome="POISON", detail=fields.clip(reason), at=datetime.now(UTC)
                )
                await uow.commit()

    await until_available("mariadb", retry_on=is_transient, attempt=record)
    metrics.POISON.labels(consumer).inc()
    log.error("message_skipped", consumer=consumer, event_id=event_id, reason=reason)


async def guarded(
    res: Resources,
    consumer: str,
    topic: str,
    key: bytes | None,
    raw: bytes | None,
    handler: Callable[[Resources, bytes | None, bytes | None], Awaitable[str]],
) -> str:
    """Run a handler; an unexpected error is logged and recorded as poison instead of stopping the agent."""
    try:
        return await handler(res, key, raw)
    except Exception as exc:
        log.exception("message_failed", consumer=consumer, topic=topic)
        try:
            await record_poison(res, consumer, _poison_id(topic, raw), f"unexpected {type(exc).__name__}: {exc}")
        except Exception:
            log.exception("message_not_recorded", consumer=consumer, topic=topic)
        return "poison"


async def handle_uploaded(res: Resources, key: bytes | None, raw: bytes | None) -> str:
    """Convert one uploaded image and mark it READY or FAILED; return the outcome for logs."""
    structlog.contextvars.clear_contextvars()
    try:
        env = Envelope.from_wire(raw or b"", topic="image-uploaded", key=(key or b"").decode())
        if env.event_type != IMAGE_UPLOADED:
            raise EnvelopeError(f"unexpected eventType {env.event_type}")
        image_id, origin_key = str(env.payload["imageId"]), str(env.payload["originKey"])
        category, created = str(env.payload["category"]), datetime.fromisoformat(str(env.payload["createdAt"]))
    except (EnvelopeError, KeyError, ValueError) as exc:
        await record_poison(res, services.CONVERTER, _poison_id("image-uploaded", raw), f"bad message: {exc}")
        return "poison"
    structlog.contextvars.bind_contextvars(event_id=env.event_id, image_id=image_id)
    started = time.perf_counter()
    claim = await until_available(
        "mariadb",
        retry_on=is_transient,
        attempt=lambda: conversions.claim(res.pool, services.CONVERTER, env.event_id, image_id, datetime.now(UTC)),
    )
    source_format = origin_key.rpartition(".")[2].upper() or "UNKNOWN"
    if claim.done:
        metrics.CONVERSIONS.labels("skipped", source_format).inc()
        log.info("conversion_skipped", reason="already processed")
        return "skipped"
    if claim.attempt > res.settings.convert_max_attempts:
        tries = claim.attempt - 1
        outcome = services.ConversionOutcome(
            ready=False, reason=f"conversion abandoned: {tries} attempts never finished (the worker stopped each time)"
        )
    else:
        stem = uploads.image_key(category, created, image_id, uploads.WEBP).removesuffix(".webp")
        with metrics.CONVERSION_SECONDS.time():
            outcome = await _convert(res, origin_key, stem, res.settings.variant_widths.for_type(category))
    settings = res.settings

    async def complete() -> services.Completion:
        return await services.complete_conversion(
            MariaDbUnitOfWork(res.pool),
            event_id=env.event_id,
            image_id=image_id,
            outcome=outcome,
            base_url=settings.base_url,
            keep_originals=settings.keep_originals,
            now=datetime.now(UTC),
            new_id=new_id,
        )

    done = await until_available("mariadb", retry_on=is_transient, attempt=complete)
    if done.origin_to_remove:
        await asyncio.to_thread(res.store.remove, done.origin_to_remove)
    status = done.image.status.value if done.image else "MISSING"
    metrics.CONVERSIONS.labels(status if done.applied else "skipped", source_format).inc()
    log.info(
        "image_converted" if outcome.ready else "conversion_failed",
        applied=done.applied,
        status=status,
        format=outcome.format,
        size=outcome.size,
        reason=outcome.reason,
        attempt=claim.attempt,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return status if done.applied else "skipped"


async def _convert(res: Resources, origin_key: str, stem: str, widths: tuple[int, ...]) -> services.ConversionOutcome:
    args = (res.settings.upload_dir, origin_key, stem, res.settings.max_image_pixels, widths)
    try:
        stored = await res.converter.run(convert_stored, *args)
    except ConversionFailed as exc:
        return services.ConversionOutcome(ready=False, reason=str(exc))
    except FileNotFoundError:
        return services.ConversionOutcome(ready=False, reason="the uploaded original is missing")
    except Exception as exc:  # a crash inside Pillow must not take the partition down with it
        return services.ConversionOutcome(ready=False, reason=f"conversion error: {type(exc).__name__}: {exc}")
    return services.ConversionOutcome(
        ready=True,
        key=stored.key,
        format=stored.format,
        size=stored.size,
        width=stored.width,
        height=stored.height,
        reason=stored.fallback_reason,
        variants=stored.variants,
    )


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
        await record_poison(res, COMMANDS, _poison_id("image-upload-requested", raw), f"bad command: {exc}")
        return "poison"
    given = env.payload.get("imageId")
    if not isinstance(given, str) or not given.strip():
        await record_poison(res, COMMANDS, env.event_id, "bad command: no imageId to answer to")
        return "poison"
    try:
        image_id = str(uuid.UUID(given))
    except ValueError:
        # Answerable: the sender is told on image-processed, under the id it sent (clipped to a key).
        await _reject_command(
            res, env.event_id, fields.clip(given, fields.IMAGE_ID), "VALIDATION_ERROR: imageId is not a UUID"
        )
        return "rejected"
    structlog.contextvars.bind_contextvars(event_id=env.event_id, image_id=image_id)
    if await _command_seen(res, env.event_id, image_id):
        log.info("upload_command_skipped", reason="image already exists")
        return "skipped"
    payload = env.payload
    try:
        data = await _command_content(res.settings, payload)
        await ingest(
            [IncomingFile(_str(payload.get("fileName")), data)],
            uploader_id=_str(payload.get("uploaderId")),
            category=_str(payload.get("category")),
            reference_data=res.references.data,
            settings=res.settings,
            writer=res.writer,
            uow=MariaDbUnitOfWork(res.pool),
            image_ids=[image_id],
        )
    except DomainError as exc:
        await _reject_command(res, env.event_id, image_id, f"{exc.code}: {exc.message}")
        return "rejected"
    async with MariaDbUnitOfWork(res.pool) as uow:
        await uow.processed.record(COMMANDS, env.event_id, outcome="ACCEPTED", detail=None, at=datetime.now(UTC))
        await uow.commit()
    log.info("upload_command_accepted", category=payload.get("category"))
    return "accepted"


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


async def _command_seen(res: Resources, event_id: str, image_id: str) -> bool:
    async def check() -> bool:
        async with MariaDbUnitOfWork(res.pool) as uow:
            return await uow.processed.seen(COMMANDS, event_id) or await uow.images.get(image_id) is not None

    return await until_available("mariadb", retry_on=is_transient, attempt=check)


async def _reject_command(res: Resources, event_id: str, image_id: str, reason: str) -> None:
    async def reject() -> None:
        async with MariaDbUnitOfWork(res.pool) as uow:
            if await uow.processed.seen(COMMANDS, event_id):
                return
            now = datetime.now(UTC)
            reason_kept = fields.clip(reason)
            await uow.processed.record(COMMANDS, event_id, outcome="REJECTED", detail=reason_kept, at=now)
            await uow.outbox.add(
                image_processed(
                    event_id=new_id(), at=now, image_id=image_id, ready=False, image_url="", reason=reason_kept
                )
            )
            await uow.commit()

    await until_available("mariadb", retry_on=is_transient, attempt=reject)
    log.warning("upload_command_rejected", reason=reason)
