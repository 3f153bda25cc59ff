"""Admission control of uploads (issue 26): what one api process holds in flight is bounded.

An upload's body is held in memory while it is read, checked and written, so without a bound a
process's memory grows with the number of clients uploading at once. Each api process admits an
upload only while the bytes of the uploads it has admitted (each request's Content-Length, or
what a chunked body has sent so far) stay within IMAGES_MAX_INFLIGHT_BYTES and their number
within IMAGES_MAX_INFLIGHT_UPLOADS; a sync upload also needs one of the conversion queue's
places (two per conversion process). Past a bound the upload is shed: 503 SERVICE_UNAVAILABLE
with Retry-After, answered before its body is read (aiohttp then reads and discards what the
client still sends, so it reads the answer, not a reset); a client that sent
`Expect: 100-continue` is answered instead of being told to continue, and sends nothing. Nothing
is stored. A process holding nothing always admits one upload, so a request at the per-request
limit is never refused for its size alone. Reads (GET, health, metrics) are never shed.
"""

from __future__ import annotations

from aiohttp import hdrs, web
from prometheus_client import Counter, Gauge

from api.errors import error_response
from core import errors
from core.settings import Settings

SHED = Counter("image_uploads_shed_total", "Uploads answered 503 before their body was read, by bound", ["bound"])
HELD_BYTES = Gauge("image_uploads_inflight_bytes", "Bytes of the uploads this api process holds in flight")
HELD_UPLOADS = Gauge("image_uploads_inflight", "Uploads this api process holds in flight")


class Admission:
    """One process's uploads in flight: bytes, count, and sync conversions waiting or running."""

    def __init__(self, *, max_bytes: int, max_uploads: int, max_sync: int) -> None:
        self.max_bytes, self.max_uploads, self.max_sync = max_bytes, max_uploads, max_sync
        self.held_bytes = self.uploads = self.sync = 0

    @classmethod
    def of(cls, settings: Settings) -> Admission:
        """The bounds the settings give (the sync queue: two uploads per conversion process)."""
        return cls(
            max_bytes=settings.max_inflight_bytes,
            max_uploads=settings.max_inflight_uploads,
            max_sync=2 * settings.effective_convert_processes,
        )

    def refusal(self, declared: int, *, sync: bool) -> str | None:
        """Which bound an upload of `declared` bytes would pass now (None: it may come in)."""
        if self.uploads >= self.max_uploads:
            return "uploads"
        if sync and self.sync >= self.max_sync:
            return "sync"
        if self.held_bytes and self.held_bytes + declared > self.max_bytes:
            return "bytes"
        return None

    def admit(self, declared: int, *, sync: bool) -> Ticket:
        """Take the upload in, or raise Overloaded (counted by the bound it passed)."""
        bound = self.refusal(declared, sync=sync)
        if bound is not None:
            SHED.labels(bound).inc()
            raise errors.Overloaded(f"this server holds as many uploads as it may ({bound}); retry shortly")
        self.uploads += 1
        self.sync += sync
        self._hold(declared)
        return Ticket(self, declared, sync=sync)

    def _hold(self, n: int) -> None:
        self.held_bytes += n
        HELD_BYTES.set(self.held_bytes)
        HELD_UPLOADS.set(self.uploads)


class Ticket:
    """One admitted upload: `charge` what a chunked body brings beyond its declared size; `release` at its answer."""

    def __init__(self, admission: Admission, held: int, *, sync: bool) -> None:
        self._admission, self._held, self._sync = admission, held, sync
        self._released = False

    def charge(self, n: int) -> None:
        """Hold `n` more bytes, or raise Overloaded when they do not fit (the body stops being read)."""
        admission = self._admission
        if admission.held_bytes + n > admission.max_bytes and admission.held_bytes > self._held:
            SHED.labels("bytes").inc()
            raise errors.Overloaded("this server holds as many upload bytes as it may; retry shortly")
        self._held += n
        admission._hold(n)

    def release(self) -> None:
        """Give back what this upload held (once)."""
        if self._released:
            return
        self._released = True
        admission = self._admission
        admission.uploads -= 1
        admission.sync -= self._sync
        admission._hold(-self._held)


# Here rather than in api/keys.py, which api/errors.py (imported above) imports.
ADMISSION = web.AppKey("admission", Admission)


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """The upload route's `Expect: 100-continue`: 503 instead of "continue" when the upload would be shed.

    aiohttp runs this before the middlewares, so the answer is made here, in the contract's shape.
    """
    expect = request.headers.get(hdrs.EXPECT, "")
    if expect.lower() != "100-continue":
        raise web.HTTPExpectationFailed(text=f"Unknown Expect: {expect}")
    sync = request.query.get("sync", "").lower() == "true"
    bound = request.app[ADMISSION].refusal(request.content_length or 0, sync=sync)
    if bound is not None:
        SHED.labels(bound).inc()
        message = f"this server holds as many uploads as it may ({bound}); retry shortly"
        response = error_response(request, 503, "SERVICE_UNAVAILABLE", message)
        response.headers[hdrs.RETRY_AFTER] = "1"
        response.force_close()  # the body was never sent: nothing to read after this answer
        return response
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0
    return None
