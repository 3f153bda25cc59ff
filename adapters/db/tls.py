"""TLS to MariaDB (IMAGES_DB_TLS_*, issue 27): the context every connection uses, and TLS required once asked.

Managed MariaDB and MySQL (RDS, Azure, SkySQL) require TLS. With IMAGES_DB_TLS_CA set, every
connection of every pool (api, workers, relay, CLI, sweeps, schema set-up, the relay's leader
lock) verifies the server's certificate against that CA, and its name too unless
IMAGES_DB_TLS_VERIFY_IDENTITY=false; IMAGES_DB_TLS_CERT and _KEY add a client certificate.

aiomysql, given an SSL context, still goes on in plain text when the server does not offer TLS
(its handshake only upgrades when the server's capabilities say SSL): a man in the middle could
strip TLS by hiding that flag. `require_tls` makes its connection class refuse instead, before
anything of the login is sent: a connection that asked for TLS gets TLS or no connection.
"""

from __future__ import annotations

import functools
import ssl

import aiomysql.connection
import pymysql
from pymysql.constants import CLIENT

from core.dsn import DbTls
from core.settings import SettingsError

# The server's answers that no waiting will change: wrong credentials, TLS refused or required.
REFUSALS = frozenset({1044, 1045, 1698, 2026, 3159})


@functools.cache
def ssl_context(tls: DbTls) -> ssl.SSLContext:
    """The client context of these settings (made once per process); SettingsError naming a file that cannot be read."""
    try:
        context = ssl.create_default_context(cafile=tls.ca)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"IMAGES_DB_TLS_CA={tls.ca!r} cannot be used: {exc}") from None
    context.check_hostname = tls.verify_identity
    context.verify_mode = ssl.CERT_REQUIRED
    if tls.cert and tls.key:
        try:
            context.load_cert_chain(tls.cert, tls.key)
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(f"IMAGES_DB_TLS_CERT/IMAGES_DB_TLS_KEY cannot be used: {exc}") from None
    return context


class _TlsOrNothing(aiomysql.connection.Connection):  # type: ignore[misc]
    """aiomysql's connection, refusing a server that does not offer TLS when TLS was asked for."""

    async def _request_authentication(self) -> None:
        if self._ssl_context is not None and not self.server_capabilities & CLIENT.SSL:
            raise pymysql.err.OperationalError(
                2026, "TLS was required (IMAGES_DB_TLS_CA) but the server does not offer it"
            )
        await super()._request_authentication()


def require_tls() -> None:
    """Make every aiomysql connection that has an SSL context refuse a server without TLS."""
    aiomysql.connection.Connection = _TlsOrNothing


def refused(exc: BaseException) -> bool:
    """Tell whether a failed connection was refused for good (credentials, TLS), not an outage to wait out."""
    if isinstance(exc, SettingsError):
        return True
    if isinstance(exc, pymysql.err.OperationalError) and exc.args and exc.args[0] in REFUSALS:
        return True
    cause = exc.__cause__
    return isinstance(cause, ssl.SSLError | ssl.CertificateError)
