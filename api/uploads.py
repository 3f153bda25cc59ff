"""`POST /api/images`: stream the multipart body within the limits, then ingest (CONTRACT 2.1).

The body is parsed by python-multipart's streaming parser, not aiohttp's MultipartReader: on a
100 KiB upload aiohttp's reader cost about a fifth of the api's CPU, most of it re-parsing each
part's Content-Disposition seven times per request (its parser rebuilds a 128-character escape
table on every call). python-multipart parses such a body in ~40 us.
"""

from __future__ import annotations

from typing import Any

from aiohttp import hdrs, web
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from adapters.group_commit import GroupedUnitOfWork
from adapters.ingest import IncomingFile, ingest
from api import keys
from api.errors import dumps
from core import errors
from core.images import Image, ImageStatus

# aiohttp reads 8 KiB at a time by default; 256 KiB halves the CPU per upload (issue 3).
CHUNK_BYTES = 256 * 1024
MAX_FIELD_BYTES = 64 * 1024


class _Body:
    """Counts every byte of the request against the request limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.read = 0

    def count(self, n: int) -> None:
        self.read += n
        if self.read > self.limit:
            raise errors.RequestTooLarge(f"request is over {self.limit} bytes")


async def upload(request: web.Request) -> web.Response:
    """Accept one (`file`) or many (`files`) images; `?sync=true` converts before answering."""
    settings = request.app[keys.SETTINGS]
    if request.content_type != "multipart/form-data":
        raise web.HTTPUnsupportedMediaType(reason="Content-Type must be multipart/form-data")
    if (request.content_length or 0) > settings.max_request_bytes:
        raise errors.RequestTooLarge(f"request is over {settings.max_request_bytes} bytes")
    body = _Body(settings.max_request_bytes)
    try:
        fields, single, multi = await _read_form(request, body, settings.max_file_bytes)
    except errors.FileTooLarge:
        await _drain(request, body)
        raise
    if single and multi:
        raise errors.ValidationError("send either `file` or `files`, not both")
    files = single or multi
    if len(single) > 1:
        raise errors.ValidationError("`file` takes one file; use `files` for several")
    references = request.app[keys.REFERENCES].data
    rule = references.rule_for(fields.get("category") or "")
    if multi and len(multi) > 1 and rule is not None and not rule.allows_multiple:
        raise errors.NotAllowedMultipleImages(f"{rule.code} takes one image")
    sync = request.query.get("sync", "").lower() == "true"
    images = await ingest(
        files,
        uploader_id=fields.get("uploaderId"),
        category=fields.get("category"),
        reference_data=references,
        settings=settings,
        writer=request.app[keys.WRITER],
        uow=GroupedUnitOfWork(request.app[keys.GROUP_COMMIT]),
        converter=request.app[keys.CONVERTER] if sync else None,
    )
    request[keys.LOG_FIELDS] = {"image_ids": [i.image_id for i in images], "sync": sync}
    bodies = [_upload_body(i) for i in images]
    return web.json_response(bodies if multi else bodies[0], dumps=dumps)


def _upload_body(image: Image) -> dict[str, Any]:
    status = "READY" if image.status is ImageStatus.READY else "PROCESSING"
    return {"id": image.image_id, "imageUrl": image.image_url, "status": status}


async def _read_form(
    request: web.Request, body: _Body, max_file_bytes: int
) -> tuple[dict[str, str], list[IncomingFile], list[IncomingFile]]:
    _, params = parse_options_header(request.headers.get(hdrs.CONTENT_TYPE))
    boundary = params.get(b"boundary")
    if not boundary:
        raise errors.ValidationError("malformed multipart body: no boundary in Content-Type")
    form = _Form(max_file_bytes)
    parser = MultipartParser(boundary, form.callbacks())
    try:
        while chunk := await request.content.read(CHUNK_BYTES):
            body.count(len(chunk))
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise errors.ValidationError(f"malformed multipart body: {exc}") from None
    if not form.complete:
        raise errors.ValidationError("malformed multipart body: no closing boundary")
    return form.fields, form.single, form.multi


class _Form:
    """Collects the parts of a multipart/form-data body as the streaming parser finds them.

    A part stops at its limit (the per-file limit for `file`/`files`, 64 KiB for other fields)
    with FILE_TOO_LARGE, raised from inside the parser, before the rest of it is held in memory.
    """

    def __init__(self, max_file_bytes: int) -> None:
        self.fields: dict[str, str] = {}
        self.single: list[IncomingFile] = []
        self.multi: list[IncomingFile] = []
        self.complete = False
        self._max_file_bytes = max_file_bytes
        self._header = bytearray()
        self._value = bytearray()
        self._disposition = ""
        self._name: str | None = None
        self._filename: str | None = None
        self._limit = 0
        self._data = bytearray()

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._disposition = ""
        self._data = bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        if self._header.lower() == b"content-disposition":
            self._disposition = self._value.decode("latin-1")  # raw bytes; names are decoded below
        self._header.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        # RFC 7578: browsers send names as UTF-8 in quoted strings; filename* is not used.
        _, params = parse_options_header(self._disposition)
        name, filename = params.get(b"name"), params.get(b"filename")
        self._name = None if name is None else name.decode("utf-8", errors="replace")
        self._filename = None if filename is None else filename.decode("utf-8", errors="replace")
        self._limit = self._max_file_bytes if self._name in ("file", "files") else MAX_FIELD_BYTES

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += memoryview(data)[start:end]
        if len(self._data) > self._limit:
            raise errors.FileTooLarge(f"a file is over {self._limit} bytes")

    def _part_end(self) -> None:
        if self._name in ("file", "files"):
            file = IncomingFile(self._filename, bytes(self._data))
            (self.single if self._name == "file" else self.multi).append(file)
        elif self._name:
            self.fields[self._name] = self._data.decode("utf-8", errors="replace")

    def _end(self) -> None:
        self.complete = True


async def _drain(request: web.Request, body: _Body) -> None:
    """Read and discard the rest of the body so the client sees our answer, not a reset."""
    while chunk := await request.content.read(CHUNK_BYTES):
        body.count(len(chunk))
