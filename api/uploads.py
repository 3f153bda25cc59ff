"""`POST /api/images`: stream the multipart body within the limits, then upload (core/upload.py, CONTRACT 2.1).

The body is parsed by `multipart`'s push parser, not aiohttp's MultipartReader: on a 100 KiB
upload aiohttp's reader cost about a fifth of the api's CPU, most of it re-parsing each part's
Content-Disposition seven times per request (its parser rebuilds a 128-character escape table
on every call). `multipart` finds boundaries and header lines with bytes.find and hands body
chunks over without copying them: 41 us for such a body with `_Form` collecting it, against
65-73 us with python-multipart (it steps through header bytes one at a time) and 610 us with
streaming-form-data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import hdrs, web
from multipart import (
    MultipartError,
    MultipartSegment,
    PushMultipartParser,
    content_disposition_unquote,
    parse_options_header,
)

from adapters.db import quotas as quota_usage
from adapters.files import spool
from adapters.ids import new_id
from api import idempotent, keys, metrics
from api.admission import ADMISSION, Ticket
from api.auth import caller
from core import auth, errors, idempotency, quotas
from core.idempotency import Remember, StoredAnswer
from core.images import Image, ImageStatus
from core.upload import IncomingFile, UploadForm
from core.upload import upload as upload_images

# aiohttp reads 8 KiB at a time by default; 256 KiB halves the CPU per upload (issue 3).
CHUNK_BYTES = 256 * 1024
MAX_FIELD_BYTES = 64 * 1024
FILE_FIELDS = ("file", "files")


class _Body:
    """Counts every byte of the request against the request limit, and a chunked body's against admission."""

    def __init__(self, limit: int, ticket: Ticket, *, declared: bool) -> None:
        self.limit = limit
        self.read = 0
        self._ticket = ticket if not declared else None  # a declared length was held whole at admission

    def count(self, n: int) -> None:
        self.read += n
        if self.read > self.limit:
            raise errors.RequestTooLarge(f"request is over {self.limit} bytes")
        if self._ticket is not None:
            self._ticket.charge(n)

    def discarding(self) -> None:
        """What is read from now on is thrown away: it counts against the limit, not admission."""
        self._ticket = None


async def upload(request: web.Request) -> web.Response:
    """Accept one (`file`) or many (`files`) images; `?sync=true` converts before answering."""
    settings = request.app[keys.SETTINGS]
    who = caller(request)
    auth.require(who, auth.UPLOAD)  # before a byte of the body is read
    if request.content_type != "multipart/form-data":
        raise web.HTTPUnsupportedMediaType(reason="Content-Type must be multipart/form-data")
    if (request.content_length or 0) > settings.max_request_bytes:
        raise errors.RequestTooLarge(f"request is over {settings.max_request_bytes} bytes")
    if who.subject is not None and settings.quota.active:
        # The uploader is the token's: one already over quota is told before its body is read and
        # stored. The count that holds is still the one in the upload's own transaction.
        now = datetime.now(UTC)
        usage = await quota_usage.usage_since(request.app[keys.POOL], who.subject, settings.quota.counted_since(now))
        quotas.check(settings.quota, usage, now, 1, 1)
    sync = request.query.get("sync", "").lower() == "true"
    ticket = request.app[ADMISSION].admit(request.content_length or 0, sync=sync)  # or 503, body unread
    try:
        return await _upload(request, ticket, who, sync)
    finally:
        ticket.release()


async def _upload(request: web.Request, ticket: Ticket, who: auth.Caller, sync: bool) -> web.Response:
    settings = request.app[keys.SETTINGS]
    body = _Body(settings.max_request_bytes, ticket, declared=request.content_length is not None)
    parts = _Form(settings.max_file_bytes, spool.spool_dir(request.app[keys.STORAGE].local_dir))
    try:
        return await _upload_read(request, body, parts, who, sync)
    finally:
        await parts.discard()  # what was spooled and not stored (a stored part was moved away)


async def _upload_read(request: web.Request, body: _Body, parts: _Form, who: auth.Caller, sync: bool) -> web.Response:
    settings = request.app[keys.SETTINGS]
    try:
        fields, single, multi = await _read_form(request, body, parts)
    except errors.FileTooLarge:
        await _drain(request, body)
        raise
    uploader = auth.uploader_of(who, fields.get("uploaderId"))  # with a token: its subject
    form = UploadForm(uploader, fields.get("category"), single, multi, sync=sync)
    meaning = [b"sync" if sync else b"async", (form.reference_type or "").encode(), b"files" if multi else b"file"]
    meaning += [part for f in form.files for part in ((f.file_name or "").encode(), _fingerprint_of(f))]
    keyed = await idempotent.keyed(request, idempotency.UPLOAD, form.uploader_id or "", meaning)

    async def work(remember: Remember | None) -> list[Image]:
        images = await upload_images(
            form,
            references=request.app[keys.REFERENCES].data,
            settings=settings,
            ports=request.app[keys.SYNC_UPLOADS if sync else keys.UPLOADS],
            now=datetime.now(UTC),
            new_id=new_id,
            remember=remember,
        )
        request[keys.LOG_FIELDS] = {"image_ids": [i.image_id for i in images], "sync": sync}
        metrics.UPLOAD_BYTES.inc(sum(f.size for f in form.files))
        return images

    return await idempotent.answer_once(request, keyed, lambda images: _answer(images, many=bool(multi)), work)


def _fingerprint_of(file: IncomingFile) -> bytes:
    """What a file adds to an Idempotency-Key's fingerprint: its bytes, or a spooled part's sha256."""
    return file.data if file.spooled is None else file.spooled.digest.encode()


def _answer(images: Sequence[Image], *, many: bool) -> StoredAnswer:
    """The upload's 200 body: one object for `file`, a list for `files` (the same bytes when replayed)."""
    bodies = [_upload_body(i) for i in images]
    return StoredAnswer(200, orjson.dumps(bodies if many else bodies[0]))


def _upload_body(image: Image) -> dict[str, Any]:
    status = "READY" if image.status is ImageStatus.READY else "PROCESSING"
    return {"id": image.image_id, "imageUrl": image.image_url, "status": status}


async def _read_form(
    request: web.Request, body: _Body, form: _Form
) -> tuple[dict[str, str], list[IncomingFile], list[IncomingFile]]:
    _, params = parse_options_header(request.headers.get(hdrs.CONTENT_TYPE, ""))
    boundary = params.get("boundary")
    if not boundary:
        raise errors.ValidationError("malformed multipart body: no boundary in Content-Type")
    try:
        # Header bytes as latin-1, which cannot fail: names are decoded from UTF-8 per part.
        parser = PushMultipartParser(boundary, header_charset="latin1")
        while chunk := await request.content.read(CHUNK_BYTES):
            body.count(len(chunk))
            for event in parser.parse(chunk):
                await form.feed(event)
        parser.close()  # raises if the closing boundary never came
    except MultipartError as exc:
        raise errors.ValidationError(f"malformed multipart body: {exc}") from None
    except ConnectionError:  # the client hung up mid-body: the middleware says so
        raise
    except OSError as exc:  # spooling a part to disk failed
        if errors.is_disk_full(exc):
            raise errors.StorageFull() from exc
        raise errors.ImageSaveFailed("the upload could not be received") from exc
    return form.fields, form.single, form.multi


class _Form:
    """Collects the parts of a multipart/form-data body from the parser's events.

    A part stops at its limit (the per-file limit for `file`/`files`, 64 KiB for other fields)
    with FILE_TOO_LARGE, as soon as a chunk takes it over, before the rest is held in memory.
    File parts are held while the request's held bytes stay within spool.SPOOL_AFTER; past it a
    part goes to disk as it arrives (adapters/files/spool.py).
    """

    def __init__(self, max_file_bytes: int, spool_dir: Path) -> None:
        self.fields: dict[str, str] = {}
        self.single: list[IncomingFile] = []
        self.multi: list[IncomingFile] = []
        self._max_file_bytes = max_file_bytes
        self._spool_dir = spool_dir
        self._name: str | None = None
        self._filename: str | None = None
        self._limit = 0
        self._size = 0
        self._held = 0  # bytes of this request's parts kept in memory
        self._chunks: list[bytes] = []
        self._spooling: spool.SpoolFile | None = None
        self._spooled: list[str] = []  # every file this request spooled: removed at its end unless moved

    async def feed(self, event: MultipartSegment | bytes | None) -> None:
        """One parser event: a part's headers, a chunk of its body, or None at its end."""
        if event is None:
            await self._part_end()
        elif isinstance(event, MultipartSegment):
            self._part_begin(event)
        else:
            self._size += len(event)
            if self._size > self._limit:
                raise errors.FileTooLarge(f"a file is over {self._limit} bytes")
            if self._spooling is None and self._name in FILE_FIELDS and self._held + len(event) > spool.SPOOL_AFTER:
                await self._start_spooling()
            if self._spooling is not None:
                await self._spooling.write(event)
            else:
                self._chunks.append(event)
                self._held += len(event)

    async def _start_spooling(self) -> None:
        self._spooling = await spool.SpoolFile.create(self._spool_dir)
        self._spooled.append(str(self._spooling.path))
        held = b"".join(self._chunks)
        self._held -= len(held)
        self._chunks = []
        if held:
            await self._spooling.write(held)

    def _part_begin(self, segment: MultipartSegment) -> None:
        # The library's own `filename` drops everything up to a backslash (an old browser's
        # habit); the contract refuses such names (INVALID_FILE_NAME), so they are read as sent.
        _, params = parse_options_header(segment.header("Content-Disposition", ""), unquote=_unquote)
        name, filename = params.get("name"), params.get("filename")
        self._name = None if name is None else _utf8(name)
        self._filename = None if filename is None else _utf8(filename)
        self._limit = self._max_file_bytes if self._name in FILE_FIELDS else MAX_FIELD_BYTES
        self._size = 0
        self._chunks = []

    async def _part_end(self) -> None:
        if self._spooling is not None:
            spooled, self._spooling = await self._spooling.close(), None
            (self.single if self._name == "file" else self.multi).append(IncomingFile(self._filename, spooled=spooled))
            return
        data = b"".join(self._chunks)  # one chunk: that chunk itself, not a copy
        if self._name in FILE_FIELDS:
            file = IncomingFile(self._filename, data)
            (self.single if self._name == "file" else self.multi).append(file)
        elif self._name:
            self.fields[self._name] = data.decode("utf-8", errors="replace")

    async def discard(self) -> None:
        """Remove what this request spooled and nobody stored (a part being written included)."""
        if self._spooling is not None:
            await self._spooling.discard()
            self._spooling = None
        await spool.remove(self._spooled)


def _unquote(value: str, _filename: bool) -> str:
    return content_disposition_unquote(value)


def _utf8(value: str) -> str:
    """RFC 7578: browsers send names as UTF-8 in quoted strings (`filename*` is not used)."""
    return value.encode("latin-1").decode("utf-8", errors="replace")


async def _drain(request: web.Request, body: _Body) -> None:
    """Read and discard the rest of the body so the client sees our answer, not a reset."""
    body.discarding()
    while chunk := await request.content.read(CHUNK_BYTES):
        body.count(len(chunk))
