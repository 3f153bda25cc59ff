"""The database DSN setting: `mysql://user:password@host:port/database[?unix_socket=...]`."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class DbTls:
    """TLS to MariaDB (IMAGES_DB_TLS_*): the CA that signs the server's certificate, an optional client pair."""

    ca: str
    cert: str | None = None
    key: str | None = None
    verify_identity: bool = True  # the server's name must match its certificate


@dataclass(frozen=True)
class DbDsn:
    """Connection parameters parsed from `mysql://user:password@host:port/database`."""

    host: str
    port: int
    user: str
    password: str
    database: str
    unix_socket: str | None = None  # `?unix_socket=/run/mysqld/mysqld.sock`: cheaper than TCP on one host
    tls: DbTls | None = None  # from the IMAGES_DB_TLS_* settings, never from the URL

    def __str__(self) -> str:
        # Never render the password: settings end up in logs.
        via = f" via {self.unix_socket}" if self.unix_socket else ""
        tls = " (tls)" if self.tls else ""
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.database}{via}{tls}"


def parse_dsn(raw: str) -> DbDsn:
    """Parse a `mysql://` or `mariadb://` DSN; raise ValueError when it is not one."""
    parts = urlsplit(raw)
    if parts.scheme not in ("mysql", "mariadb"):
        raise ValueError("scheme must be mysql:// or mariadb://")
    database = parts.path.lstrip("/")
    if not parts.hostname or not database or "/" in database:
        raise ValueError("expected mysql://user:password@host:port/database")
    options = parse_qs(parts.query)
    unknown = set(options) - {"unix_socket"}
    if unknown:
        raise ValueError(f"unknown DSN options {sorted(unknown)}")
    return DbDsn(
        host=parts.hostname,
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=database,
        unix_socket=options["unix_socket"][0] if "unix_socket" in options else None,
    )
