"""The one error middleware: every failure answers with the CONTRACT error body."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from aiohttp import hdrs, web

from adapters.db.mariadb import is_retryable, is_unreachable
from adapters.outage import Outage
from api import keys, metrics
from api.auth import challenge
from core import errors
from core.errors import DomainError
from core.events import iso
from core.ports import StoreUnavailable

log = structlog.get_logger("api.request")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATUS_OF_CODE: dict[str, int] = {
    "VALIDATION_ERROR": 400,
    "REFERENCE_TYPE_NOT_FOUND": 400,
    "INVALID_FILE_NAME": 400,
    "FILE_EXTENSION_NOT_FOUND": 400,
    "INVALID_FILE_EXTENSION": 400,
    "INVALID_FILE_CONTENT": 400,
    "FILE_TOO_LARGE": 400,
    "REQUEST_TOO_LARGE": 413,
    "IMAGE_DIMENSIONS_EXCEEDED": 400,
    "IMAGE_NOT_FOUND": 404,
    "IMAGE_PROCESSING_IN_PROGRESS": 409,
    "IMAGE_PROCESSING_FAILED": 500,
    "INVALID_IMAGE_STATUS": 400,
    "IMAGE_ALREADY_CONFIRMED": 400,
    "NOT_ALLOWED_MULTIPLE_IMAGES": 400,
    "IMAGE_COUNT_EXCEEDED": 400,
    "INVALID_IMAGE_SEQUENCE": 400,
    "INVALID_REFERENCE": 400,
    "IMAGE_SAVE_FAILED": 500,
    "IDEMPOTENCY_KEY_REUSED": 422,
    "IDEMPOTENCY_REQUEST_IN_PROGRESS": 409,
    "INTERNAL_SERVER_ERROR": 500,
    "SERVICE_UNAVAILABLE": 503,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "QUOTA_EXCEEDED": 429,
}
# How long a client is asked to wait while MariaDB cannot be reached (CONTRACT 2).
RETRY_AFTER_S = 5

# aiohttp's own errors (unknown route, 405, 413, ...) by HTTP status.
CODE_OF_STATUS: dict[int, str] = {
    400: "VALIDATION_ERROR",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def dumps(obj: Any) -> str:
    """Serialise JSON bodies with orjson (UTF-8 as is, so Korean names stay readable)."""
    return orjson.dumps(obj).decode()


def error_body(status: int, code: str, message: str, path: str) -> bytes:
    """Return the CONTRACT section 2 error body."""
    body = {"timestamp": iso(datetime.now(UTC)), "status": status, "code": code, "message": message, "path": path}
    return orjson.dumps(body)


def error_response(request: web.Request, status: int, code: str, message: str) -> web.Response:
    """Return the CONTRACT section 2 error response."""
    request[keys.ERROR_CODE] = code
    return web.Response(
        status=status, body=error_body(status, code, message, request.path), content_type="application/json"
    )


def error_middleware() -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Build the middleware: bind the request id, map errors, log one line per request."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        structlog.contextvars.clear_contextvars()
        request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        response: web.StreamResponse
        aborted: dict[str, bool] = {}
        try:
            response = await handler(request)
        except asyncio.CancelledError:
            # The client hung up under a server that cancels handlers, or the server is stopping.
            _log_request(request, 499, started, cancelled=True)
            raise
        except ConnectionResetError:
            # The client hung up before its request was complete: nobody to answer, nothing to fix.
            aborted = {"aborted": True}
            response = error_response(request, 400, "VALIDATION_ERROR", "the client closed the connection mid-request")
        except DomainError as exc:
            response = error_response(request, STATUS_OF_CODE.get(exc.code, 400), exc.code, exc.message)
            response.headers.update(_headers_of(exc))
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = CODE_OF_STATUS.get(exc.status, "HTTP_ERROR")
            response = error_response(request, exc.status, code, exc.reason or code)
            if hdrs.ALLOW in exc.headers:  # a 405 says which methods the resource has (RFC 9110)
                response.headers[hdrs.ALLOW] = exc.headers[hdrs.ALLOW]
        except Exception as exc:
            outage = _outage(exc)
            if outage is None and is_retryable(exc):
                # Chosen as a deadlock victim (or timed out on a lock) on every try: MariaDB rolled the
                # transaction back, so nothing was stored and 503's "retry" is the truth (CONTRACT 2).
                log.warning("transaction_gave_up", error=f"{type(exc).__name__}: {exc}"[:300])
                response = error_response(
                    request, 503, "SERVICE_UNAVAILABLE", "the database was too busy to take this; nothing was changed"
                )
                response.headers[hdrs.RETRY_AFTER] = "1"
            elif outage is None:
                log.exception("request_failed", method=request.method, path=request.path)
                response = error_response(request, 500, "INTERNAL_SERVER_ERROR", "Internal server error")
            else:  # an outage, not a bug: logged once per outage, not with a traceback per request
                key, what = outage
                request.app[key].report(exc)
                response = error_response(request, 503, "SERVICE_UNAVAILABLE", f"{what} cannot be reached")
                response.headers[hdrs.RETRY_AFTER] = str(RETRY_AFTER_S)
        response.headers["X-Request-Id"] = request_id
        _log_request(request, response.status, started, **aborted)
        return response

    return middleware


def _headers_of(exc: DomainError) -> dict[str, str]:
    """What an error answer says beyond its body: the bearer challenge, when to retry."""
    if isinstance(exc, errors.Unauthorized | errors.Forbidden):
        return {hdrs.WWW_AUTHENTICATE: challenge(exc)}
    if isinstance(exc, errors.QuotaExceeded):
        return {hdrs.RETRY_AFTER: str(exc.retry_after_s)}
    if isinstance(exc, errors.ServiceUnavailable):
        return {hdrs.RETRY_AFTER: str(exc.retry_after_s or RETRY_AFTER_S)}
    return {}


def _outage(exc: Exception) -> tuple[web.AppKey[Outage], str] | None:
    """Which dependency's outage an error is (CONTRACT 2: 503 with Retry-After), if any."""
    if is_unreachable(exc):
        return keys.OUTAGE, "the database"
    if isinstance(exc, StoreUnavailable):
        return keys.STORE_OUTAGE, "the object store"
    return None


def _log_request(request: web.Request, status: int, started: float, **extra: Any) -> None:
    """The request's one canonical log line, and its metrics."""
    seconds = time.perf_counter() - started
    code = request.get(keys.ERROR_CODE)
    metrics.observe(request, status, code, seconds)
    if code is not None:
        extra["code"] = code  # an error's line says which, as its answer did
    log.info(
        "request_handled",
        method=request.method,
        path=request.path,
        status=status,
        duration_ms=round(seconds * 1000, 2),
        **request.get(keys.LOG_FIELDS, {}),
        **extra,
    )
