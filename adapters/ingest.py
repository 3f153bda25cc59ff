"""Accepting uploads, shared by the HTTP API and the upload-command agent.

Order of the write path (issue 3): validate every file first; write each original to its key
and fsync; then ONE transaction records images, storage rows, history and outbox rows. If the
transaction fails the files are removed; a crash between the two leaves files without rows,
which the orphan sweep removes. A row therefore never exists without its file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import structlog

from adapters import formats, isobmff
from adapters.converter import ConverterPool
from adapters.ids import new_id
from adapters.mariadb import in_transaction_retrying
from adapters.storage import GroupWriter
from adapters.webp import ConversionFailed, DimensionsExceeded, StoredResult, convert_and_store
from core import errors, uploads
from core.idempotency import Remember
from core.images import Image
from core.ports import UnitOfWork
from core.references import ReferenceData
from core.services import SyncResult, record_uploads
from core.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class IncomingFile:
    """One file of an upload, read whole (a part is stopped at the per-file limit before this)."""

    file_name: str | None
    data: bytes


@dataclass(frozen=True)
class Inspected:
    """A file that passed every check, with what its bytes are."""

    file: IncomingFile
    format: str
    width: int
    height: int


def inspect(file: IncomingFile, data: ReferenceData, settings: Settings) -> Inspected:
    """Apply the CONTRACT 2.1 checks to one file; raise the matching DomainError."""
    uploads.extension_of(file.file_name, data)
    if not file.data:
        raise errors.ValidationError("file is empty")
    if len(file.data) > settings.max_file_bytes:
        raise errors.FileTooLarge(f"file is over {settings.max_file_bytes} bytes")
    kind = formats.sniff(file.data[: formats.SNIFF_BYTES])
    if kind is None:
        raise errors.InvalidFileContent("the bytes are not a file of any supported format")
    width = height = 0
    if kind in ("MP4", "MOV"):
        try:
            kind = isobmff.container_format(file.data)
        except isobmff.InvalidContainer as exc:
            raise errors.InvalidFileContent(f"not a valid {kind} file: {exc}") from None
    elif kind in formats.PIXEL_FORMATS:
        try:
            dims = formats.read_dimensions(file.data, settings.max_image_pixels)
        except formats.TooManyPixels as exc:
            raise errors.ImageDimensionsExceeded(str(exc)) from None
        except ValueError as exc:
            raise errors.InvalidFileContent(str(exc)) from None
        width, height = dims.width, dims.height
    return Inspected(file, kind, width, height)


async def _inspect(file: IncomingFile, data: ReferenceData, settings: Settings) -> Inspected:
    # Counting a GIF's frames walks all of its blocks in Python: 0.9 s for 10 MB of one-byte
    # sub-blocks, ~1.4 s for 10 MB of tiny frames (measured). On a thread the event loop keeps
    # serving meanwhile (it takes the GIL back every switch interval) instead of stalling.
    if formats.sniff(file.data[:16]) == "GIF":
        return await asyncio.to_thread(inspect, file, data, settings)
    return inspect(file, data, settings)


async def ingest(
    files: Sequence[IncomingFile],
    *,
    uploader_id: str | None,
    category: str | None,
    reference_data: ReferenceData,
    settings: Settings,
    writer: GroupWriter,
    uow: UnitOfWork,
    converter: ConverterPool | None = None,
    image_ids: Sequence[str] | None = None,
    now: datetime | None = None,
    new_id: Callable[[], str] = new_id,
    remember: Remember | None = None,
) -> list[Image]:
    """Validate, store and record an upload; with `converter`, convert before answering (sync).

    With `remember`, the answer to the client's Idempotency-Key commits with the rows.
    """
    uploader = uploads.require_uploader(uploader_id)
    rule = uploads.require_category(category, reference_data)
    if not files:
        raise errors.ValidationError("no file")
    checked = [await _inspect(f, reference_data, settings) for f in files]
    at = now or datetime.now(UTC)
    ids = list(image_ids) if image_ids is not None else [new_id() for _ in checked]
    originals = [
        uploads.StoredOriginal(
            image_id=image_id,
            category=rule.code,
            uploader_id=uploader,
            origin_key=uploads.original_key(rule.code, at, image_id, c.format),
            origin_format=c.format,
            origin_size=len(c.file.data),
            width=c.width,
            height=c.height,
        )
        for image_id, c in zip(ids, checked, strict=True)
    ]
    written: list[str] = []
    try:
        converted = None
        if converter is not None:
            converted = await _convert_all(checked, originals, at, settings, converter, written)
        if converter is None or settings.keep_originals:
            try:
                await writer.create(
                    [(_origin_key(o), c.file.data) for o, c in zip(originals, checked, strict=True)], written
                )
            except OSError as exc:  # the disk (or the api's file writer) failed: nothing is recorded
                log.error("upload_save_failed", error=str(exc), errno=exc.errno)
                raise errors.ImageSaveFailed("the uploaded file could not be stored") from exc
        if converted is not None and not settings.keep_originals:
            originals = [_without_origin(o) for o in originals]
        recorded = originals
        return await in_transaction_retrying(
            lambda: record_uploads(
                uow,
                recorded,
                base_url=settings.base_url,
                now=at,
                new_id=new_id,
                converted=converted,
                remember=remember,
            )
        )
    except BaseException:
        if uow.commit_in_doubt:
            # The rows may have committed: removing the files could leave rows without files.
            # Keep them; if no row names them, the orphan sweep removes them within the hour.
            log.error("upload_commit_in_doubt", kept=written)
            raise
        # Nothing half-written: no file stays behind a failed request.
        for key in written:
            await writer.remove(key)
        raise


def _origin_key(original: uploads.StoredOriginal) -> str:
    assert original.origin_key is not None
    return original.origin_key


def _without_origin(original: uploads.StoredOriginal) -> uploads.StoredOriginal:
    return replace(original, origin_key=None)


async def _convert_all(
    checked: Sequence[Inspected],
    originals: Sequence[uploads.StoredOriginal],
    at: datetime,
    settings: Settings,
    converter: ConverterPool,
    written: list[str],
) -> list[SyncResult]:
    futures = [
        converter.run(
            convert_and_store,
            settings.upload_dir,
            c.file.data,
            _stem(o, at),
            settings.max_image_pixels,
            settings.variant_widths.for_type(o.category),
        )
        for c, o in zip(checked, originals, strict=True)
    ]
    results: list[StoredResult | BaseException] = await asyncio.gather(*futures, return_exceptions=True)
    for r in results:
        if isinstance(r, StoredResult):
            written.extend([r.key, *(v.key for v in r.variants)])
    for r in results:
        if isinstance(r, DimensionsExceeded):
            raise errors.ImageDimensionsExceeded(str(r))
        if isinstance(r, ConversionFailed):
            raise errors.InvalidFileContent(str(r))
        if isinstance(r, BaseException):
            raise r
    return [
        SyncResult(r.key, r.format, r.size, r.width, r.height, r.variants)
        for r in results
        if isinstance(r, StoredResult)
    ]


def _stem(original: uploads.StoredOriginal, at: datetime) -> str:
    return uploads.image_key(original.category, at, original.image_id, uploads.WEBP).removesuffix(".webp")
