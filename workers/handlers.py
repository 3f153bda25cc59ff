"""What the agents do with one message, free of Faust so tests can call it directly.

Every handler returns normally for every input: a poison message (bad payload, missing row or
file) is recorded and skipped so its partition keeps moving; only an outage of MariaDB or of the
object store is waited out (retried with backoff), because skipping then would lose work.
`guarded()` is the last line: an error nobody foresaw is logged and recorded, and the stream goes on.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import aiomysql
import structlog

from adapters.db import conversion_claims as conversions
from adapters.db.mariadb import MariaDbUnitOfWork
from adapters.db.reference_cache import ReferenceCache
from adapters.ids import new_id
from adapters.images.codec import ConversionFailed, convert_stored
from adapters.images.process_pool import ConverterPool
from adapters.retry import is_transient, until_available
from adapters.storage import is_unavailable
from core import conversion, errors, messages, upload_rules
from core.events import IMAGE_UPLOADED, Envelope, EnvelopeError
from core.ports import Conversion, Storage, StoreUnavailable
from core.settings import Settings
from core.upload import UploadPorts
from workers import metrics

log = structlog.get_logger("workers")
T = TypeVar("T")


@dataclass
class Resources:
    """What the handlers share in one worker process; built by the worker's composition root (workers/app.py)."""

    settings: Settings
    pool: aiomysql.Pool
    references: ReferenceCache
    storage: Storage
    converter: ConverterPool
    uploads: UploadPorts  # an upload command's: its own transaction, the storage's original files


def poison_id(topic: str, raw: bytes | None) -> str:
    # A message that is not an envelope has no eventId: derive a stable one from its bytes.
    return str(uuid.UUID(bytes=hashlib.sha256(topic.encode() + (raw or b"")).digest()[:16]))


async def record_poison(res: Resources, consumer: str, event_id: str, reason: str) -> None:
    """Record a message that can never be processed, so it is skipped (and visible) from now on."""

    await retrying(
        lambda: messages.record_poison(
            MariaDbUnitOfWork(res.pool), consumer=consumer, event_id=event_id, reason=reason, now=datetime.now(UTC)
        )
    )
    metrics.POISON.labels(consumer).inc()
    log.error("message_skipped", consumer=consumer, event_id=event_id, reason=reason)


Handler = Callable[[Resources, bytes | None, bytes | None], Awaitable[str]]


async def guarded(
    res: Resources, consumer: str, topic: str, key: bytes | None, raw: bytes | None, handler: Handler
) -> str:
    """Run a handler; an unexpected error is logged and recorded as poison instead of stopping the agent."""
    try:
        return await handler(res, key, raw)
    except Exception as exc:
        log.exception("message_failed", consumer=consumer, topic=topic)
        try:
            await record_poison(res, consumer, poison_id(topic, raw), f"unexpected {type(exc).__name__}: {exc}")
        except Exception:
            log.exception("message_not_recorded", consumer=consumer, topic=topic)
        return "poison"


@dataclass(frozen=True)
class Uploaded:
    """What an IMAGE_UPLOADED message asks: convert this stored original."""

    event_id: str
    image_id: str
    origin_key: str
    reference_type: str  # the payload's `category`
    created: datetime

    @classmethod
    def parse(cls, key: bytes | None, raw: bytes | None) -> Uploaded:
        """Read the message; raise EnvelopeError, KeyError or ValueError when it is not one."""
        env = Envelope.from_wire(raw or b"", topic="image-uploaded", key=(key or b"").decode())
        if env.event_type != IMAGE_UPLOADED:
            raise EnvelopeError(f"unexpected eventType {env.event_type}")
        p = env.payload
        created = datetime.fromisoformat(str(p["createdAt"]))
        return cls(env.event_id, str(p["imageId"]), str(p["originKey"]), str(p["category"]), created)

    @property
    def source_format(self) -> str:
        return self.origin_key.rpartition(".")[2].upper() or "UNKNOWN"


async def handle_uploaded(res: Resources, key: bytes | None, raw: bytes | None) -> str:
    """Convert one uploaded image and mark it READY or FAILED; return the outcome for logs."""
    structlog.contextvars.clear_contextvars()
    try:
        msg = Uploaded.parse(key, raw)
    except (EnvelopeError, KeyError, ValueError) as exc:
        await record_poison(res, conversion.CONVERTER, poison_id("image-uploaded", raw), f"bad message: {exc}")
        return "poison"
    structlog.contextvars.bind_contextvars(event_id=msg.event_id, image_id=msg.image_id)
    started = time.perf_counter()
    claim = await retrying(
        lambda: conversions.claim(res.pool, conversion.CONVERTER, msg.event_id, msg.image_id, datetime.now(UTC))
    )
    if claim.done:
        metrics.CONVERSIONS.labels("skipped", msg.source_format).inc()
        log.info("conversion_skipped", reason="already processed")
        return "skipped"
    outcome, legs = await _outcome(res, msg, claim.attempt)
    committing = time.perf_counter()
    done = await retrying(
        lambda: conversion.complete_conversion(
            MariaDbUnitOfWork(res.pool),
            event_id=msg.event_id,
            image_id=msg.image_id,
            outcome=outcome,
            base_url=res.settings.base_url,
            keep_originals=res.settings.keep_originals,
            now=datetime.now(UTC),
            new_id=new_id,
        )
    )
    legs["commit_ms"] = round((time.perf_counter() - committing) * 1000, 1)
    if done.origin_to_remove:
        await _remove_original(res, done.origin_to_remove)
    status = done.image.status.value if done.image else "MISSING"
    metrics.CONVERSIONS.labels(status if done.applied else "skipped", msg.source_format).inc()
    log.info(
        "image_converted" if outcome.ready else "conversion_failed",
        applied=done.applied,
        status=status,
        format=outcome.format,
        size=outcome.size,
        reason=outcome.reason,
        attempt=claim.attempt,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
        **legs,  # queue_ms (waiting for a conversion process), convert_ms, store_ms (S3's GET and PUTs), commit_ms
    )
    return status if done.applied else "skipped"


async def retrying(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run a database step, waiting out an outage of MariaDB (skipping it then would lose work)."""
    return await until_available("mariadb", retry_on=is_transient, attempt=attempt)


async def storing(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run a storage step, waiting out an outage of the object storage (no image ends FAILED for one)."""
    return await until_available("object-store", retry_on=is_unavailable, attempt=attempt)


async def _remove_original(res: Resources, key: str) -> None:
    """Remove a converted image's original; if the storage fails, the orphan sweep removes it later."""
    try:
        await res.storage.remove(key)
    except (OSError, StoreUnavailable) as exc:
        log.warning("original_not_removed", key=key, error=f"{type(exc).__name__}: {exc}")


async def _outcome(res: Resources, msg: Uploaded, attempt: int) -> tuple[Conversion, dict[str, float]]:
    """Convert, unless earlier deliveries used up the attempts (each killed its worker mid-conversion).

    With the legs of the work, in ms: waiting for a conversion process, and the conversion itself.
    """
    if attempt > res.settings.convert_max_attempts:
        reason = f"conversion abandoned: {attempt - 1} attempts never finished (the worker stopped each time)"
        return Conversion.failed(reason), {}
    stem = upload_rules.image_key(msg.reference_type, msg.created, msg.image_id, upload_rules.WEBP).removesuffix(
        ".webp"
    )
    with metrics.CONVERSION_SECONDS.time():
        return await _convert(res, msg.origin_key, stem, res.settings.variant_widths.for_type(msg.reference_type))


async def _convert(
    res: Resources, origin_key: str, stem: str, widths: tuple[int, ...]
) -> tuple[Conversion, dict[str, float]]:
    """Convert in a workspace of the storage (the storage's directory, or scratch on S3) and publish the
    results before READY commits; an outage of the object storage is waited out, never FAILED."""
    async with res.storage.workspace() as space:
        began = time.perf_counter()
        try:
            await storing(lambda: space.fetch(origin_key))
        except FileNotFoundError:
            return Conversion.failed("the uploaded original is missing"), {}
        except (OSError, ValueError) as exc:  # refused by the storage, over the upload limit, or a key out of bounds
            return Conversion.failed(f"the uploaded original could not be read: {exc}"), {}
        args = (space.root, origin_key, stem, res.settings.max_image_pixels, widths, space.durable)
        try:
            # A full disk is waited out like an outage (logged at each retry): no image ends FAILED for it.
            done, queued_s, ran_s = await until_available(
                "disk-space",
                lambda: res.converter.run_timed(convert_stored, *args),
                max_wait_s=30,
                retry_on=errors.is_disk_full,
            )
        except ConversionFailed as exc:
            return Conversion.failed(str(exc)), {}
        except FileNotFoundError:
            return Conversion.failed("the uploaded original is missing"), {}
        except Exception as exc:  # a crash inside Pillow must not take the partition down with it
            return Conversion.failed(f"conversion error: {type(exc).__name__}: {exc}"), {}
        try:
            await storing(lambda: space.publish(done))
        except OSError as exc:  # refused by the storage: nothing is served, so nothing can be READY
            return Conversion.failed(f"the converted image could not be stored: {exc}"), {}
    # The store's part: fetching the original and publishing the results (~0 on disk; S3's GET and PUTs).
    store_s = time.perf_counter() - began - queued_s - ran_s
    return done, {
        "queue_ms": round(queued_s * 1000, 1),
        "convert_ms": round(ran_s * 1000, 1),
        "store_ms": round(store_s * 1000, 1),
    }
