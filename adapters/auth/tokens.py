"""Bearer tokens (RFC 6750) verified with PyJWT: signature, algorithm, `iss`, `aud`, `exp`, `nbf`.

PyJWT because it is the most used JWT library in Python, small, and its `PyJWK` binds each key
to one algorithm: a token whose header names another algorithm than its key's is refused
before any signature is checked (no RS/HS confusion, no `none`). Keys come from the issuer's
JWKS (adapters/auth/jwks.py) or from a shared HS256 secret in a file.

Verifying an RS256 token costs ~145 us here (the RSA check ~30 us; PyJWT's reading of the token,
which checks each base64 character in Python, the rest); a token already verified is looked up
in a small cache instead (~0.5 us; bounded, each entry kept at most a minute and never past its
`exp`), so a client sending the same token with each upload pays once a minute. The cache is
emptied when the issuer's keys change.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import jwt
from jwt import PyJWK

from adapters.auth.jwks import JwksKeys
from adapters.settings_files import read_secret_bytes
from core import auth, errors
from core.auth import Caller
from core.settings import Settings, SettingsError

MAX_TOKEN_CHARS = 6144  # aiohttp refuses a header line over 8190 bytes before this
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash
CACHE_ENTRIES = 4096
CACHE_SECONDS = 60.0
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]


class KeySource(Protocol):
    """Where the key that verifies a token comes from."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def key_for(self, kid: str | None) -> PyJWK: ...


def hs256_secret(path: str) -> bytes:
    """The HS256 secret in IMAGES_AUTH_HS256_SECRET_FILE; SettingsError naming it if unusable or too short."""
    secret = read_secret_bytes("IMAGES_AUTH_HS256_SECRET_FILE", path)
    if len(secret) < MIN_SECRET_BYTES:
        raise SettingsError(f"IMAGES_AUTH_HS256_SECRET_FILE holds under {MIN_SECRET_BYTES} bytes: too weak")
    return secret


def mint(
    settings: Settings, subject: str, *, scopes: Sequence[str], ttl_s: int, reference_types: Sequence[str] = ()
) -> str:
    """Sign a token with the shared HS256 secret (`python -m workers token`): local runs, services sharing it.

    Tokens of a JWKS issuer come from that issuer (an identity provider), never from here.
    """
    if not settings.auth_hs256_secret_file:
        raise SettingsError("IMAGES_AUTH_HS256_SECRET_FILE is not set: with a JWKS, tokens come from its issuer")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_s,
        "scope": " ".join(scopes),
    }
    if reference_types:
        claims["ref_types"] = [t.upper() for t in reference_types]
    return jwt.encode(claims, hs256_secret(settings.auth_hs256_secret_file), algorithm="HS256")


class SharedSecret:
    """One HS256 key, read from a file at start (Docker and Kubernetes secrets are files)."""

    def __init__(self, path: str) -> None:
        secret = hs256_secret(path)
        self._key = PyJWK({"kty": "oct", "k": jwt.utils.base64url_encode(secret).decode()}, algorithm="HS256")

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def key_for(self, kid: str | None) -> PyJWK:
        return self._key


class TokenVerifier:
    """Turns a bearer token into the Caller it names, or raises UNAUTHORIZED (or 503: keys unreachable)."""

    def __init__(self, keys: KeySource, *, algorithms: Sequence[str], issuer: str, audience: str, leeway_s: float):
        self.keys = keys
        self._algorithms = list(algorithms)
        self._issuer, self._audience, self._leeway = issuer, audience, leeway_s
        self._jwt = jwt.PyJWT(options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True})
        self._verified: dict[str, tuple[float, Caller]] = {}

    def forget(self) -> None:
        """Drop every cached verification (the issuer's keys changed)."""
        self._verified.clear()

    async def caller(self, token: str) -> Caller:
        """The caller a token names, once its signature and claims are checked."""
        cached = self._verified.get(token)
        if cached is not None and cached[0] > time.time():
            return cached[1]
        if len(token) > MAX_TOKEN_CHARS:
            raise errors.Unauthorized(f"the token is over {MAX_TOKEN_CHARS} characters")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise errors.Unauthorized("the token is not a JWS compact token") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self._algorithms:
            raise errors.Unauthorized(f"the token's algorithm {str(alg)[:20]!r} is not accepted")
        if kid is not None and (not isinstance(kid, str) or len(kid) > 256):
            raise errors.Unauthorized("the token's kid is not a key id")
        key = await self.keys.key_for(kid)
        claims = self._decode(token, key)
        caller = auth.caller_of(claims)
        self._remember(token, float(claims["exp"]), caller)
        return caller

    def _decode(self, token: str, key: PyJWK) -> dict[str, Any]:
        try:
            return self._jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError:
            raise errors.Unauthorized("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise errors.Unauthorized("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise errors.Unauthorized("the token is not for this audience") from None
        except jwt.InvalidIssuerError:
            raise errors.Unauthorized("the token is not from the trusted issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise errors.Unauthorized(f"the token has no {exc.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise errors.Unauthorized("the token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise errors.Unauthorized(f"the token is invalid: {type(exc).__name__}") from None

    def _remember(self, token: str, exp: float, caller: Caller) -> None:
        if len(self._verified) >= CACHE_ENTRIES:
            self._verified.pop(next(iter(self._verified)))  # the oldest entry
        self._verified[token] = (min(exp + self._leeway, time.time() + CACHE_SECONDS), caller)


def token_verifier(settings: Settings) -> TokenVerifier | None:
    """The verifier IMAGES_AUTH asks for (None when it is off); its keys start with the app."""
    if settings.auth != "jwt":
        return None
    keys: KeySource
    if settings.auth_hs256_secret_file:
        keys, algorithms = SharedSecret(settings.auth_hs256_secret_file), ("HS256",)
    else:
        keys, algorithms = (
            JwksKeys(
                settings.auth_jwks_url,
                settings.auth_algorithms,
                refresh_s=settings.auth_jwks_refresh_s,
                max_age_s=settings.auth_jwks_max_age_s,
            ),
            settings.auth_algorithms,
        )
    verifier = TokenVerifier(
        keys,
        algorithms=algorithms,
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        leeway_s=settings.auth_leeway_s,
    )
    if isinstance(keys, JwksKeys):
        keys.on_change = verifier.forget  # a key gone from the set: what it verified is verified again
    return verifier
