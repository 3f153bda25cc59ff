"""Who is calling (CONTRACT 2.7): the bearer token of every `/api/` request and of `/metrics`.

With IMAGES_AUTH=jwt the middleware verifies the token (adapters/auth/tokens.py) and keeps the
Caller on the request; each handler then asks core/auth.py what that caller may do. A missing
token answers 401 with a bare `Bearer` challenge, a bad one 401 with `error="invalid_token"`
(RFC 6750 3.1). `/health`, `/actuator/health`, `/docs`, `/openapi.json` and the stored files
under `/images/` stay open; so do CORS preflights, which carry no credentials by design.
With IMAGES_AUTH=off every request is the anonymous caller, who may do everything.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import hdrs, web

from adapters.auth.tokens import TokenVerifier
from api import keys
from core import errors
from core.auth import ANONYMOUS, Caller
from core.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REALM = "image-server"

log = structlog.get_logger("api.auth")


def needs_token(request: web.Request) -> bool:
    """Tell whether a request must carry a token (when IMAGES_AUTH=jwt)."""
    if request.method == hdrs.METH_OPTIONS and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
        return False  # a CORS preflight: browsers never send credentials with it
    return request.path.startswith("/api/") or request.path == "/metrics"


def caller(request: web.Request) -> Caller:
    """The request's caller (the anonymous one when IMAGES_AUTH=off)."""
    return request.get(keys.CALLER, ANONYMOUS)


def auth_middleware(verifier: TokenVerifier) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Build the middleware that verifies the bearer token of the requests that need one."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if needs_token(request):
            request[keys.CALLER] = await verifier.caller(bearer_token(request))
        return await handler(request)

    return middleware


def bearer_token(request: web.Request) -> str:
    """The token of `Authorization: Bearer <token>`; UNAUTHORIZED without one."""
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is None:
        raise errors.Unauthorized("a bearer token is required", error=None)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise errors.Unauthorized("a bearer token is required", error=None)
    if not token.strip():
        raise errors.Unauthorized("the bearer token is empty")
    return token.strip()


def challenge(exc: errors.Unauthorized | errors.Forbidden) -> str:
    """The WWW-Authenticate header of a 401 or 403 (RFC 6750 3)."""
    if isinstance(exc, errors.Forbidden):
        scope = f', scope="{exc.scope}"' if exc.scope else ""
        return f'Bearer realm="{REALM}", error="insufficient_scope"{scope}'
    if exc.error is None:
        return f'Bearer realm="{REALM}"'
    description = exc.message.replace("\\", "").replace('"', "'")
    return f'Bearer realm="{REALM}", error="{exc.error}", error_description="{description}"'


def warn_if_open(settings: Settings) -> None:
    """Log a warning at start when anyone who reaches the port may do everything."""
    if settings.auth == "off" and not _loopback(settings.api_host):
        log.warning(
            "authentication_off",
            host=settings.api_host,
            detail="IMAGES_AUTH=off and the api listens beyond loopback: every caller may upload, confirm and delete",
        )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
