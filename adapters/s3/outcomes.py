"""What became of each S3 request: counted and timed for /metrics, and told apart for the callers.

What the client's own retries did not cure is an outage (`StoreUnavailable`: connection errors,
throttling, 5xx) or a refusal (an OSError: FileNotFoundError for a missing key, PermissionError
for a 403, OSError(EIO) for the other 4xx and for a request botocore would not send).
"""

from __future__ import annotations

import asyncio
import errno
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import ClientError as HttpClientError
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import SSLError as BotoSSLError
from prometheus_client import Counter, Histogram

from core.ports import StoreUnavailable

# Codes S3 (and compatible servers) answer for throttling, which botocore retries like a 5xx.
THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestLimitExceeded"}
MISSING = {"NoSuchKey", "404", "NotFound"}

OPERATIONS = ("put", "get", "head", "delete", "list")
REQUESTS = Counter(
    "object_store_requests_total",
    "S3 requests by operation and outcome: ok, missing (no such key), refused (another 4xx), unavailable",
    ["operation", "outcome"],
)
SECONDS = Histogram("object_store_request_seconds", "S3 request time, the client's own retries included", ["operation"])
for _operation in OPERATIONS:  # exported as 0 from the start, so a rate() over them has a series
    SECONDS.labels(_operation)
    for _outcome in ("ok", "missing", "refused", "unavailable"):
        REQUESTS.labels(_operation, _outcome)


@asynccontextmanager
async def request(operation: str, key: str) -> AsyncIterator[None]:
    """One S3 request: counted by outcome and timed (object_store_requests_total, ..._seconds), and
    what failed raised as the callers see it (`translated`: StoreUnavailable or an OSError)."""
    began = time.perf_counter()
    try:
        yield
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        _observe(operation, outcome_of(exc), began)
        raise translated(exc, key) from exc
    _observe(operation, "ok", began)


def _observe(operation: str, outcome: str, began: float) -> None:
    REQUESTS.labels(operation, outcome).inc()
    SECONDS.labels(operation).observe(time.perf_counter() - began)


def outcome_of(exc: BaseException) -> str:
    """The `outcome` label of a failed request."""
    if unavailable(exc) or isinstance(exc, StoreUnavailable):
        return "unavailable"
    if isinstance(exc, FileNotFoundError) or (isinstance(exc, ClientError) and code(exc) in MISSING):
        return "missing"
    return "refused"


def translated(exc: BaseException, key: str) -> BaseException:
    """What the callers see of an error the client's own retries did not cure."""
    if isinstance(exc, StoreUnavailable | asyncio.CancelledError):
        return exc
    if unavailable(exc):
        return StoreUnavailable(f"S3 could not be reached for {key}: {code(exc)}")
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc, ClientError):
        said = code(exc)
        if said in MISSING:
            return FileNotFoundError(errno.ENOENT, f"no object {key}")
        if said in ("AccessDenied", "403"):
            return PermissionError(errno.EACCES, f"S3 refused {key}: {said}")
        return OSError(errno.EIO, f"S3 refused {key}: {said}")
    if isinstance(exc, BotoCoreError):  # no credentials, a parameter botocore refused before sending
        return OSError(errno.EIO, f"S3 request for {key} not made: {code(exc)}")
    return exc


def unavailable(exc: BaseException) -> bool:
    """Tell whether an error is an outage: refused, reset, timed out (botocore's own, or the
    transport's should one get through), throttled, or a 5xx. A certificate that does not verify is
    no outage: waiting will not change it (AWS_CA_BUNDLE names the CA of a private store)."""
    if isinstance(exc, BotoSSLError | ssl.SSLError):
        return False
    if isinstance(exc, BotoConnectionError | HTTPClientError | HttpClientError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return status >= 500 or code(exc) in THROTTLED
    return False


def code(exc: BaseException) -> str:
    """S3's error code, or the exception's name and message."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "unknown"))
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
