"""The adapters behind an upload's ports (core/upload.py), and the one place that wires them.

- `HeaderInspector` reads what the bytes are from their headers (formats, isobmff), never
  decoding pixels; a GIF's header walk runs on a thread.
- `PoolConverter` converts in the process's conversion pool (?sync=true) in a workspace of the
  storage, and publishes the result (on S3: PUTs it) before the upload's transaction.
- The original files are the storage's (the directory's GroupWriter, or the bucket); the unit of work
  is the one given (the api's group commit, or a worker's own transaction).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import BinaryIO

from adapters.db.mariadb import in_transaction_retrying
from adapters.images import containers as isobmff
from adapters.images import headers as formats
from adapters.images.codec import ConversionFailed, DimensionsExceeded, convert_and_store
from adapters.images.process_pool import ConverterPool
from core.ports import Content, Conversion, FileFacts, Spooled, Storage, Undecodable, UploadUnitOfWork
from core.quotas import QuotaLimits
from core.settings import Settings
from core.upload import UploadPorts


class HeaderInspector:
    """FileInspector: the format sniffed, a container's structure, the pixels the header declares."""

    def __init__(self, max_image_pixels: int) -> None:
        self._max_pixels = max_image_pixels

    async def inspect(self, content: Content) -> FileFacts:
        # Counting a GIF's frames walks all of its blocks in Python: 0.9 s for 10 MB of one-byte
        # sub-blocks, ~1.4 s for 10 MB of tiny frames (measured). On a thread the event loop keeps
        # serving meanwhile (it takes the GIL back every switch interval) instead of stalling.
        if isinstance(content, Spooled):
            return await asyncio.to_thread(self.facts_of_file, content.path)
        if formats.sniff(content[:16]) == "GIF":
            return await asyncio.to_thread(self.facts, content)
        return self.facts(content)

    def facts_of_file(self, path: str) -> FileFacts:
        """What a spooled file is, reading what its header needs (a container's boxes: all of it)."""
        with open(path, "rb") as file:
            head = file.read(formats.SNIFF_BYTES)
            kind = formats.sniff(head)
            # A container's boxes and a GIF's frames are walked over all of the file: read whole (at
            # most the per-file limit), since walking a GIF from a file on this thread starves the
            # event loop of the GIL (0.6 s stalls measured; from bytes, < 0.1 s).
            if kind in ("MP4", "MOV", "GIF") or kind not in formats.PIXEL_FORMATS:
                return self.facts(head + file.read() if kind in ("MP4", "MOV", "GIF") else head)
            file.seek(0)
            return self._pixel_facts(kind, file)

    def facts(self, data: bytes) -> FileFacts:
        """What the bytes are (synchronous)."""
        kind = formats.sniff(data[: formats.SNIFF_BYTES])
        if kind in ("MP4", "MOV"):
            try:
                return FileFacts(isobmff.container_format(data))
            except isobmff.InvalidContainer as exc:
                return FileFacts(kind, unreadable=f"not a valid {kind} file: {exc}")
        if kind not in formats.PIXEL_FORMATS:
            return FileFacts(kind)  # None (unsupported) or SVG (checked when it is converted)
        return self._pixel_facts(kind, data)

    def _pixel_facts(self, kind: str, source: bytes | BinaryIO) -> FileFacts:
        """An image's size from its header (bytes, or a file at its start), within the pixel limit."""
        try:
            dims = formats.read_dimensions(source, self._max_pixels)
        except formats.TooManyPixels as exc:
            return FileFacts(kind, too_many_pixels=str(exc))
        except ValueError as exc:
            return FileFacts(kind, unreadable=str(exc))
        return FileFacts(kind, dims.width, dims.height)


def _convert_spooled(
    root: str, path: str, stem: str, max_pixels: int, widths: tuple[int, ...], durable: bool
) -> Conversion:
    """convert_and_store of a spooled upload, its bytes read here, in the conversion process."""
    with open(path, "rb") as file:
        data = file.read()
    return convert_and_store(root, data, stem, max_pixels, widths, durable)


class PoolConverter:
    """SyncConverter: converts in a ConverterPool's process, in a workspace of the storage, and publishes."""

    def __init__(self, pool: ConverterPool, settings: Settings, storage: Storage) -> None:
        self._pool, self._settings, self._storage = pool, settings, storage

    async def convert(self, content: Content, stem: str, widths: Sequence[int]) -> Conversion:
        settings = self._settings
        # A spooled file is read in the conversion process, never in this one.
        convert, source = (
            (_convert_spooled, content.path) if isinstance(content, Spooled) else (convert_and_store, content)
        )
        async with self._storage.workspace() as space:
            try:
                conversion: Conversion = await self._pool.run(
                    convert, space.root, source, stem, settings.max_image_pixels, tuple(widths), space.durable
                )
            except DimensionsExceeded as exc:
                raise Undecodable(str(exc), too_many_pixels=True) from None
            except ConversionFailed as exc:
                raise Undecodable(str(exc)) from None
            await space.publish(conversion)  # StoreUnavailable: 503; a refusal (OSError): IMAGE_SAVE_FAILED
        return conversion


def upload_ports(
    settings: Settings,
    storage: Storage,
    unit_of_work: Callable[[], UploadUnitOfWork],
    converter: ConverterPool | None = None,
    *,
    quota: QuotaLimits | None = None,
) -> UploadPorts:
    """The ports of one upload in this process (`quota`: the uploaders' quotas, HTTP uploads only)."""
    return UploadPorts(
        store=storage.blobs,
        inspector=HeaderInspector(settings.max_image_pixels),
        unit_of_work=unit_of_work,
        transactions=in_transaction_retrying,
        converter=PoolConverter(converter, settings, storage) if converter is not None else None,
        quota=quota,
    )
