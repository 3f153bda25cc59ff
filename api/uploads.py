"""`POST /api/images`: stream the multipart body within the limits, then ingest (CONTRACT 2.1)."""

from __future__ import annotations

from typing import Any

from aiohttp import BodyPartReader, web

from adapters.ingest import IncomingFile, ingest
from adapters.mariadb import MariaDbUnitOfWork
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
        store=request.app[keys.STORE],
        uow=MariaDbUnitOfWork(request.app[keys.POOL]),
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
    fields: dict[str, str] = {}
    single: list[IncomingFile] = []
    multi: list[IncomingFile] = []
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise errors.ValidationError("nested multipart is not supported")
            # aiohttp re-parses Content-Disposition on every .name/.filename access: read each once.
            name = part.name
            if name in ("file", "files"):
                data = await _read_part(part, body, max_file_bytes)
                (single if name == "file" else multi).append(IncomingFile(part.filename, data))
            elif name:
                raw = await _read_part(part, body, MAX_FIELD_BYTES)
                fields[name] = raw.decode("utf-8", errors="replace")
    except (ValueError, AssertionError) as exc:
        # aiohttp raises these for malformed multipart bodies.
        raise errors.ValidationError(f"malformed multipart body: {exc}") from None
    return fields, single, multi


async def _read_part(part: BodyPartReader, body: _Body, limit: int) -> bytes:
    buf = bytearray()
    while chunk := await part.read_chunk(CHUNK_BYTES):
        body.count(len(chunk))
        buf += chunk
        if len(buf) > limit:
            raise errors.FileTooLarge(f"a file is over {limit} bytes")
    return bytes(buf)


async def _drain(request: web.Request, body: _Body) -> None:
    """Read and discard the rest of the body so the client sees our answer, not a reset."""
    while chunk := await request.content.read(CHUNK_BYTES):
        body.count(len(chunk))
