"""The token issuer's public keys (IMAGES_AUTH_JWKS_URL): fetched over HTTP, cached, refreshed.

- Fetched in the background at start and every IMAGES_AUTH_JWKS_MAX_AGE_S, never on the path of
  a request whose key is cached: verifying a token costs no network.
- A token naming a key id not in the cache asks for a fetch now, at most once every
  IMAGES_AUTH_JWKS_REFRESH_S (one fetch at a time, whoever asks), so an issuer's new key is
  accepted without a restart and random key ids cannot make the service hammer the issuer.
- While the issuer cannot be reached the cached keys keep working; a token whose key is not
  cached answers 503 (`ServiceUnavailable`) rather than 401: the token may well be good.
- Only signing keys of the configured asymmetric algorithms are kept: a symmetric (`oct`) key
  in the set can never verify an HS256 token (no RS/HS confusion). The document is read up to
  256 KiB and 100 keys, with a 5 s time limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import aiohttp
import orjson
import structlog
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from core import errors

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_KEYS = 100
FETCH_TIMEOUT_S = 5.0

log = structlog.get_logger(__name__)


class JwksUnreachable(Exception):
    """The JWKS document could not be fetched or read."""


def parse_keys(document: bytes, algorithms: Sequence[str]) -> dict[str | None, PyJWK]:
    """The usable signing keys of a JWKS document, by key id; raise JwksUnreachable if it is not one."""
    try:
        data = orjson.loads(document)
    except orjson.JSONDecodeError as exc:
        raise JwksUnreachable(f"not JSON: {exc}") from None
    listed = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(listed, list):
        raise JwksUnreachable("no `keys` list")
    keys: dict[str | None, PyJWK] = {}
    for item in listed[:MAX_KEYS]:
        if not isinstance(item, dict) or item.get("use", "sig") != "sig" or item.get("kty") == "oct":
            continue
        try:
            key = PyJWK(item)
        except (PyJWKError, ValueError, TypeError, KeyError) as exc:
            log.warning("jwks_key_skipped", kid=str(item.get("kid"))[:100], error=str(exc)[:200])
            continue
        if key.algorithm_name in algorithms:
            keys[item.get("kid") if isinstance(item.get("kid"), str) else None] = key
    return keys


class JwksKeys:
    """A cache of the issuer's keys, kept fresh in the background and refreshed for unknown key ids."""

    def __init__(
        self,
        url: str,
        algorithms: Sequence[str],
        *,
        refresh_s: float,
        max_age_s: float,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._url, self._algorithms = url, tuple(algorithms)
        parts = urlsplit(url)  # what the logs show: no user, password or query a URL might carry
        netloc = (parts.hostname or "") if parts.port is None else f"{parts.hostname}:{parts.port}"
        self._shown = parts._replace(netloc=netloc, query="").geturl()
        self._refresh_s, self._max_age_s = refresh_s, max_age_s
        self.on_change = on_change  # keys changed: whatever was verified with the old set is forgotten
        self._keys: dict[str | None, PyJWK] = {}
        self._last_try = -float("inf")
        self._reachable = False
        self._fetching: asyncio.Task[None] | None = None
        self._background: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the HTTP session and fetch in the background (now, then every max age)."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S))
        self._background = asyncio.create_task(self._keep_fresh())

    async def close(self) -> None:
        """Stop refreshing and close the session."""
        for task in (self._background, self._fetching):
            if task is not None:
                task.cancel()
        if self._session is not None:
            await self._session.close()

    async def key_for(self, kid: str | None) -> PyJWK:
        """The key a token names; refresh once (rate-limited) if it is unknown.

        Raise UNAUTHORIZED for a key the issuer does not have, SERVICE_UNAVAILABLE when the
        issuer cannot be asked and the key is not cached.
        """
        key = self._lookup(kid)
        if key is not None:
            return key
        if time.monotonic() - self._last_try >= self._refresh_s or self._fetching is not None:
            await self._refresh()
            key = self._lookup(kid)
            if key is not None:
                return key
        if not self._reachable:
            raise errors.ServiceUnavailable("the token issuer's keys cannot be fetched")
        raise errors.Unauthorized("the token's key id is not one of the issuer's keys")

    def _lookup(self, kid: str | None) -> PyJWK | None:
        if kid is None and len(self._keys) == 1:  # an issuer with one key may leave kid out
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        """Fetch once, sharing a fetch already under way; never raises."""
        if self._fetching is None:
            self._fetching = asyncio.create_task(self._fetch())
        fetching = self._fetching
        try:
            await asyncio.shield(fetching)
        finally:
            if fetching.done() and self._fetching is fetching:
                self._fetching = None

    async def _fetch(self) -> None:
        self._last_try = time.monotonic()
        try:
            keys = parse_keys(await self._download(), self._algorithms)
        except (JwksUnreachable, aiohttp.ClientError, TimeoutError, OSError) as exc:
            if self._reachable or not self._keys:
                log.warning("jwks_fetch_failed", url=self._shown, error=f"{type(exc).__name__}: {exc}"[:300])
            self._reachable = False
            return
        if not self._reachable:
            log.info("jwks_fetched", url=self._shown, keys=len(keys))
        self._reachable = True
        self._keys = keys
        self.on_change()  # a key may be gone (revoked): what it verified is verified again

    async def _download(self) -> bytes:
        assert self._session is not None, "start() first"
        async with self._session.get(self._url, headers={"Accept": "application/json"}) as response:
            if response.status != 200:
                raise JwksUnreachable(f"HTTP {response.status}")
            body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
        if len(body) > MAX_DOCUMENT_BYTES:
            raise JwksUnreachable(f"over {MAX_DOCUMENT_BYTES} bytes")
        return body

    async def _keep_fresh(self) -> None:
        while True:
            await self._refresh()
            # While the issuer is away, try again sooner than the max age (but never sooner than the refresh interval).
            await asyncio.sleep(self._max_age_s if self._reachable else self._refresh_s)
