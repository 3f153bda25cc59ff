"""The upload use case (CONTRACT 2.1): every rule of an upload, then store, record and (sync) convert.

One act, one name: an *upload*, whether it came over HTTP (`POST /api/images`) or as an
UPLOAD_REQUESTED command on Kafka. The shells parse what arrived into an `UploadForm` and map
the DomainErrors raised here to their answers; the I/O goes through the ports of core/ports.py.

Order of the write path: check the whole form and every file first; write each original
durably; then ONE transaction records images, storage rows, history and outbox rows. If the
transaction fails the files are removed; if its outcome is unknown they are kept (the rows may
exist), and the orphan sweep removes them if no row names them. A row never exists without its file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from core import errors, upload_rules
from core.idempotency import Remember
from core.images import Image
from core.ports import (
    Content,
    Conversion,
    FileFacts,
    FileInspector,
    OriginalFiles,
    Spooled,
    StoreUnavailable,
    SyncConverter,
    Transactions,
    Undecodable,
    UploadUnitOfWork,
)
from core.quotas import QuotaLimits
from core.references import ReferenceData, ReferenceRule
from core.services import NewId, record_uploads
from core.settings import Settings


@dataclass(frozen=True)
class IncomingFile:
    """One file of an upload: its bytes held (`data`), or spooled to scratch as they arrived (`spooled`).

    A shell stops reading a part at the per-file limit either way.
    """

    file_name: str | None
    data: bytes = b""
    spooled: Spooled | None = None

    @property
    def size(self) -> int:
        return self.spooled.size if self.spooled is not None else len(self.data)

    @property
    def content(self) -> Content:
        """What the ports take: the bytes, or where they were spooled."""
        return self.spooled if self.spooled is not None else self.data


@dataclass(frozen=True)
class UploadForm:
    """What a client sent: the fields and the files of each multipart field (`file`, `files`)."""

    uploader_id: str | None
    reference_type: str | None  # the form's `category` field
    single: Sequence[IncomingFile] = ()  # the `file` parts
    multi: Sequence[IncomingFile] = ()  # the `files` parts
    sync: bool = False

    @property
    def files(self) -> Sequence[IncomingFile]:
        """The files, in the order they were sent."""
        return self.single or self.multi


@dataclass(frozen=True)
class UploadPorts:
    """The I/O an upload needs."""

    store: OriginalFiles
    inspector: FileInspector
    unit_of_work: Callable[[], UploadUnitOfWork]
    transactions: Transactions
    converter: SyncConverter | None = None  # needed for a sync upload
    quota: QuotaLimits | None = None  # the uploaders' quotas (HTTP uploads; an upload command has none)


@dataclass(frozen=True)
class Checked:
    """A file that passed every check, with what its bytes are."""

    file: IncomingFile
    format: str
    width: int
    height: int


def check_form(form: UploadForm, references: ReferenceData) -> tuple[str, ReferenceRule]:
    """Apply the form's rules, in the contract's order; return (uploaderId, the reference type's rule).

    The file counts come first: several `files` for a single-image type are refused as such
    even before the other fields are read.
    """
    if form.single and form.multi:
        raise errors.ValidationError("send either `file` or `files`, not both")
    if len(form.single) > 1:
        raise errors.ValidationError("`file` takes one file; use `files` for several")
    known = references.rule_for(form.reference_type or "")
    if len(form.multi) > 1 and known is not None and not known.allows_multiple:
        raise errors.NotAllowedMultipleImages(f"{known.code} takes one image")
    uploader = upload_rules.require_uploader(form.uploader_id)
    rule = upload_rules.require_reference_type(form.reference_type, references)
    if not form.files:
        raise errors.ValidationError("no file")
    return uploader, rule


def check_name_and_size(file: IncomingFile, references: ReferenceData, settings: Settings) -> None:
    """The checks of one file that need no look at its bytes: the name's extension, emptiness, size.

    An SVG has a smaller limit of its own (upload_rules.SVG_MAX_BYTES): its checks read the whole text.
    """
    extension = upload_rules.extension_of(file.file_name, references)
    if not file.size:
        raise errors.ValidationError("file is empty")
    if file.size > settings.max_file_bytes:
        raise errors.FileTooLarge(f"file is over {settings.max_file_bytes} bytes")
    if extension == "SVG" and file.size > upload_rules.SVG_MAX_BYTES:
        raise errors.FileTooLarge(f"an SVG is over {upload_rules.SVG_MAX_BYTES} bytes")


def check_content(file: IncomingFile, facts: FileFacts) -> Checked:
    """What the bytes are, as the inspector found them: a supported format, readable, within the pixel limit."""
    if facts.format is None:
        raise errors.InvalidFileContent("the bytes are not a file of any supported format")
    if facts.too_many_pixels is not None:
        raise errors.ImageDimensionsExceeded(facts.too_many_pixels)
    if facts.unreadable is not None:
        raise errors.InvalidFileContent(facts.unreadable)
    return Checked(file, facts.format, facts.width, facts.height)


async def upload(
    form: UploadForm,
    *,
    references: ReferenceData,
    settings: Settings,
    ports: UploadPorts,
    now: datetime,
    new_id: NewId,
    image_ids: Sequence[str] | None = None,
    remember: Remember | None = None,
) -> list[Image]:
    """Check, store and record an upload (converting first when `form.sync`); return its images.

    `image_ids`: the ids to give (an upload command names its own); `remember`: an Idempotency-Key's answer.
    """
    uploader, rule = check_form(form, references)
    checked = []
    for file in form.files:  # one file at a time: the first file's error is the answer
        check_name_and_size(file, references, settings)
        checked.append(check_content(file, await ports.inspector.inspect(file.content)))
    ids = list(image_ids) if image_ids is not None else [new_id() for _ in checked]
    originals = [_original(c, image_id, uploader, rule.code, now) for image_id, c in zip(ids, checked, strict=True)]
    uow = ports.unit_of_work()
    written: list[str] = []
    try:
        converted = await _convert_all(ports, checked, originals, now, settings, written) if form.sync else None
        if converted is None or settings.keep_originals:
            await _store_originals(ports.store, originals, checked, written)
        if converted is not None and not settings.keep_originals:
            originals = [replace(o, origin_key=None) for o in originals]
        recorded = originals
        return await ports.transactions(
            lambda: record_uploads(
                uow,
                recorded,
                base_url=settings.base_url,
                now=now,
                new_id=new_id,
                converted=converted,
                remember=remember,
                quota=ports.quota,
            )
        )
    except BaseException:
        if uow.commit_in_doubt:
            # The rows may have committed: removing the files could leave rows without files.
            await ports.store.keep_in_doubt(written)
            raise
        await _remove_written(ports.store, written)
        raise


async def _remove_written(store: OriginalFiles, written: Sequence[str]) -> None:
    """Remove what a failed upload wrote: nothing half-written stays behind it.

    A file that cannot be removed now (the storage is failing too) has no row: it is kept for the
    orphan sweep, like a commit in doubt, and the upload's own error is what the caller sees.
    """
    left: list[str] = []
    for key in written:
        try:
            await store.remove(key)
        except (OSError, StoreUnavailable):
            left.append(key)
    if left:
        await store.keep_in_doubt(left)


async def _store_originals(
    store: OriginalFiles,
    originals: Sequence[upload_rules.StoredOriginal],
    checked: Sequence[Checked],
    written: list[str],
) -> None:
    files = [(o.origin_key or "", c.file.content) for o, c in zip(originals, checked, strict=True)]
    try:
        await store.create(files, written)
    except OSError as exc:  # the disk (or the api's file writer) failed: nothing is recorded
        if errors.is_disk_full(exc):
            raise errors.StorageFull() from exc
        raise errors.ImageSaveFailed("the uploaded file could not be stored") from exc


def _original(
    checked: Checked, image_id: str, uploader: str, reference_type: str, now: datetime
) -> upload_rules.StoredOriginal:
    return upload_rules.StoredOriginal(
        image_id=image_id,
        reference_type=reference_type,
        uploader_id=uploader,
        origin_key=upload_rules.original_key(reference_type, now, image_id, checked.format),
        origin_format=checked.format,
        origin_size=checked.file.size,
        width=checked.width,
        height=checked.height,
    )


async def _convert_all(
    ports: UploadPorts,
    checked: Sequence[Checked],
    originals: Sequence[upload_rules.StoredOriginal],
    now: datetime,
    settings: Settings,
    written: list[str],
) -> list[Conversion]:
    """Convert every file at once (the ?sync=true path); the first that cannot be is the answer."""
    converter = ports.converter
    assert converter is not None, "a sync upload needs a converter"
    stems = [
        upload_rules.image_key(o.reference_type, now, o.image_id, upload_rules.WEBP).removesuffix(".webp")
        for o in originals
    ]
    results = await asyncio.gather(
        *(
            converter.convert(c.file.content, stem, settings.variant_widths.for_type(o.reference_type))
            for c, o, stem in zip(checked, originals, stems, strict=True)
        ),
        return_exceptions=True,
    )
    for r in results:
        if isinstance(r, Conversion) and r.key is not None:  # a sync conversion that returned wrote its files
            written.extend([r.key, *(v.key for v in r.variants)])
    for r in results:
        if isinstance(r, Undecodable):
            raise (errors.ImageDimensionsExceeded if r.too_many_pixels else errors.InvalidFileContent)(str(r))
        if isinstance(r, OSError) and errors.is_disk_full(r):
            raise errors.StorageFull() from r
        if isinstance(r, OSError):  # the converted file could not be stored (the storage refused it)
            raise errors.ImageSaveFailed("the converted file could not be stored") from r
        if isinstance(r, BaseException):
            raise r
    return [r for r in results if isinstance(r, Conversion)]
