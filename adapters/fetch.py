"""Fetching an upload command's `sourceUrl`: allow-listed hosts only, size cap, timeout, no stray redirects."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import aiohttp

from core.errors import DomainError
from core.settings import Settings

MAX_REDIRECTS = 3


class FetchRefused(DomainError):
    """A source URL that is not allowed, not reachable or not acceptable; `code` is the contract's."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_allowed(url: str, allowed_hosts: tuple[str, ...]) -> None:
    """Raise FetchRefused unless `url` is http(s) on an allow-listed host."""
    if not allowed_hosts:
        raise FetchRefused("VALIDATION_ERROR", "sourceUrl fetching is disabled (IMAGES_FETCH_ALLOWED_HOSTS is empty)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused("VALIDATION_ERROR", "sourceUrl must be an http(s) URL")
    if parts.hostname.lower() not in allowed_hosts:
        raise FetchRefused("VALIDATION_ERROR", f"host {parts.hostname!r} is not on the allow-list")


async def fetch_source(url: str, settings: Settings) -> bytes:
    """Download `url` within the per-file limit, following only allow-listed redirects."""
    timeout = aiohttp.ClientTimeout(total=settings.fetch_timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for _ in range(MAX_REDIRECTS + 1):
            check_allowed(url, settings.fetch_allowed_hosts)
            try:
                async with session.get(url, allow_redirects=False) as response:
                    if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                        url = urljoin(url, response.headers["Location"])
                        continue
                    if response.status != 200:
                        raise FetchRefused("VALIDATION_ERROR", f"sourceUrl answered HTTP {response.status}")
                    return await _read_capped(response, settings.max_file_bytes)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise FetchRefused("VALIDATION_ERROR", f"sourceUrl could not be fetched: {exc!r}") from None
    raise FetchRefused("VALIDATION_ERROR", "sourceUrl redirects too often")


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    buf = bytearray()
    async for chunk in response.content.iter_chunked(256 * 1024):
        buf += chunk
        if len(buf) > limit:
            raise FetchRefused("FILE_TOO_LARGE", f"sourceUrl is over {limit} bytes")
    return bytes(buf)
