"""A token issuer for the tests: RSA keys made here, a JWKS served over real HTTP, tokens signed with them.

The JWKS is served from a thread (stdlib http.server), so a test's event loop and a subprocess
api can both fetch it. `rotate()` adds a new signing key, `down` makes the endpoint answer 503,
and `fetches` counts what was asked of it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://issuer.test/"
AUDIENCE = "image-server"
EVERY_SCOPE = "images:upload images:read images:confirm images:metrics"


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TestIssuer:
    """Signs tokens and serves the public half of its keys as a JWKS."""

    __test__ = False  # not a test class, whatever its name says

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.published: list[str] = []  # the key ids the JWKS lists
        self.down = False
        self.padding = 0  # bytes of filler in the JWKS document (to try the api's bound on it)
        self.fetches = 0
        self.current = self.rotate()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.fetches += 1
                if issuer.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps(issuer.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/.well-known/jwks.json"

    def __enter__(self) -> TestIssuer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def rotate(self) -> str:
        """Add a new signing key to the JWKS (the old ones stay listed) and sign with it from now on."""
        kid = uuid.uuid4().hex[:12]
        self.keys[kid] = new_rsa_key()
        self.published.append(kid)
        self.current = kid
        return kid

    def jwks(self) -> dict[str, Any]:
        listed = []
        for kid in self.published:
            public = json.loads(RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
            listed.append(public | {"kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": listed} | ({"padding": "x" * self.padding} if self.padding else {})

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 600, "scope": EVERY_SCOPE}
        return {k: v for k, v in (base | overrides).items() if v is not None}

    def token(self, *, kid: str | None = None, key: rsa.RSAPrivateKey | None = None, **claims: Any) -> str:
        """An RS256 token signed with the current key (or `key`, under `kid`); claims over the defaults."""
        kid = kid or self.current
        return jwt.encode(self.claims(**claims), key or self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def public_pem(self) -> bytes:
        return (
            self.keys[self.current]
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )


def unsigned_token(claims: dict[str, Any], header: dict[str, Any]) -> str:
    """A token made by hand: `alg: none`, or anything a library would refuse to sign."""
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(claims).encode())
    return f"{head}.{body}."


def hs256_token(claims: dict[str, Any], secret: bytes, kid: str | None = None) -> str:
    """An HS256 token signed by hand with `secret` (PyJWT refuses a PEM key as an HMAC secret)."""
    header = {"alg": "HS256", "typ": "JWT"} | ({"kid": kid} if kid else {})
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
