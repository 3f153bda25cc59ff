"""MariaDB through aiomysql: the pool, schema application, and the unit of work.

The unit of work is the heart of the transactional outbox: the repositories and the outbox
writer share its one connection, so a state change and the event announcing it commit together.
"""

from __future__ import annotations

import asyncio
import re
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import aiomysql
import pymysql
import structlog
from pymysql.constants import CLIENT
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from adapters.db import tls
from adapters.db.records import repositories
from adapters.db.statements import Pipeline
from adapters.retry import until_available
from core.dsn import DbDsn

T = TypeVar("T")
log = structlog.get_logger(__name__)
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schema.sql"
# MariaDB errors after which the whole transaction may simply be run again.
RETRYABLE_ERRORS = frozenset({1205, 1213})  # lock wait timeout, deadlock


def is_server_error(exc: BaseException) -> bool:
    """Tell whether MariaDB itself answered with this error (not the client: 2000-2999 are CR_* codes)."""
    code = _code(exc)
    return isinstance(code, int) and code >= 1000 and not 2000 <= code < 3000


# Client errors (pymysql's CR_* codes) raised while opening a connection: nothing was sent.
NEVER_CONNECTED = frozenset({2002, 2003, 2005})  # no socket, connection refused, unknown host
# Errors that mean the server cannot be reached right now, as opposed to a statement it refused.
UNREACHABLE = NEVER_CONNECTED | {1040, 1053, 1927, 2006, 2013, 2055}  # too many, shutdown, killed, gone, lost


def _code(exc: BaseException) -> object:
    return exc.args[0] if isinstance(exc, pymysql.err.MySQLError) and exc.args else None


def outcome_unknown(exc: BaseException) -> bool:
    """Tell whether a transaction that failed with `exc` may still have committed.

    Not when MariaDB itself refused a statement (the batch stopped before its COMMIT), when no
    connection could even be opened, or when the connection was already closed before the COMMIT
    was written (aiomysql's InterfaceError "Not connected": nothing of it was sent, and the server
    rolls back a transaction whose connection ends). Anything else (a connection lost while the
    COMMIT was on its way, a cancellation while waiting for its answer) leaves the outcome unknown.
    """
    if isinstance(exc, pymysql.err.InterfaceError):
        return False
    return not (is_server_error(exc) or _code(exc) in NEVER_CONNECTED)


def is_unreachable(exc: BaseException) -> bool:
    """Tell whether `exc` says MariaDB cannot be reached (an outage: answer 503, not 500)."""
    if isinstance(exc, pymysql.err.InterfaceError):
        return True  # the connection was already closed under us
    return isinstance(exc, pymysql.err.OperationalError) and _code(exc) in UNREACHABLE


async def open_pool(dsn: DbDsn, *, size: int) -> aiomysql.Pool:
    """A process's pool, waiting for MariaDB while it is down; a refusal (TLS, login) stops the start with one line."""
    try:
        return await until_available("mariadb", lambda: create_pool(dsn, size=size), retry_on=worth_waiting_for)
    except Exception as exc:
        cause = exc.__cause__ or exc
        log.error(
            "database_refused",
            dsn=str(dsn),
            error=f"{type(cause).__name__}: {cause}"[:500],
            tls="IMAGES_DB_TLS_CA set" if dsn.tls else "no TLS (IMAGES_DB_TLS_CA is empty)",
        )
        raise


def worth_waiting_for(exc: BaseException) -> bool:
    """Tell whether a failure to connect may pass (MariaDB starting, restarting), unlike a refusal (TLS, login)."""
    return not tls.refused(exc)


def is_retryable(exc: BaseException) -> bool:
    """Tell whether a failed transaction can be retried as a whole (deadlock, lock timeout)."""
    return isinstance(exc, pymysql.err.OperationalError) and bool(exc.args) and exc.args[0] in RETRYABLE_ERRORS


async def in_transaction_retrying(transaction: Callable[[], Awaitable[T]], *, attempts: int = 5) -> T:
    """Run a whole transaction again if MariaDB chose it as a deadlock victim (or its lock wait timed out)."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception(is_retryable),
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=0.01, max=0.2),
        reraise=True,
    ):
        with attempt:
            return await transaction()
    raise AssertionError("unreachable: AsyncRetrying re-raises the last error")


def connect_kwargs(dsn: DbDsn) -> dict[str, Any]:
    """Return aiomysql connection arguments for a DSN (with its TLS context, TLS then required)."""
    where: dict[str, Any] = (
        {"unix_socket": dsn.unix_socket} if dsn.unix_socket else {"host": dsn.host, "port": dsn.port}
    )
    if dsn.tls is not None:
        tls.require_tls()
        where["ssl"] = tls.ssl_context(dsn.tls)
    return where | {
        "user": dsn.user,
        "password": dsn.password,
        "db": dsn.database,
        "charset": "utf8mb4",
        "autocommit": True,
        "connect_timeout": 5,
        # Timestamps are written as UTC; make NOW() agree.
        "init_command": "SET time_zone = '+00:00'",
    }


async def create_pool(dsn: DbDsn, *, size: int) -> aiomysql.Pool:
    """Open a pool; connections are autocommit until a unit of work BEGINs.

    The pool's connections accept several statements per query: a unit of work sends its writes
    and its COMMIT in one round trip (statements.Pipeline). Every value still goes through the
    driver's escaping; no SQL is ever built from input.
    """
    return await aiomysql.create_pool(
        minsize=1,
        maxsize=size,
        pool_recycle=3600,
        client_flag=CLIENT.MULTI_STATEMENTS,
        **connect_kwargs(dsn),
    )


def schema_statements(sql: str) -> list[str]:
    """Split schema.sql into statements (no statement of ours contains `;` at a line end)."""
    without_comments = re.sub(r"^\s*--.*$", "", sql, flags=re.MULTILINE)
    return [s.strip() for s in re.split(r";\s*$", without_comments, flags=re.MULTILINE) if s.strip()]


async def apply_schema(dsn: DbDsn, path: Path = SCHEMA_PATH) -> None:
    """Create the database if needed and apply schema.sql (re-runnable, keeps data)."""
    server = connect_kwargs(dsn) | {"db": None}
    conn = await aiomysql.connect(**server)
    try:
        # IF NOT EXISTS and INSERT IGNORE answer with notes on a second run: that is the point.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pymysql.Warning)
            await _run_schema(conn, dsn, path)
    finally:
        conn.close()


async def _run_schema(conn: aiomysql.Connection, dsn: DbDsn, path: Path) -> None:
    async with conn.cursor() as cur:
        await cur.execute(
            f"CREATE DATABASE IF NOT EXISTS `{database_identifier(dsn.database)}` "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
        await cur.execute(f"USE `{database_identifier(dsn.database)}`")
        for statement in schema_statements(await asyncio.to_thread(path.read_text, encoding="utf-8")):
            await cur.execute(statement)


def database_identifier(name: str) -> str:
    """Return a database name checked to be a plain identifier (it cannot be a query parameter)."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise ValueError(f"database name {name!r} must be [A-Za-z0-9_]+")
    return name


async def ping(pool: aiomysql.Pool) -> None:
    """Run the validation query; raise when the database does not answer."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT 1")
        await cur.fetchone()


class MariaDbUnitOfWork:
    """`async with uow:` takes a connection and opens a transaction; it rolls back unless commit() was called.

    The BEGIN and every write travel with the transaction's next read or with its COMMIT
    (statements.Pipeline), so a write-only transaction is one round trip.
    """

    def __init__(self, pool: aiomysql.Pool) -> None:
        self._pool = pool
        self._conn: aiomysql.Connection | None = None
        self._pipeline: Pipeline | None = None
        self._committed = False
        self.commit_in_doubt = False

    async def __aenter__(self) -> Self:
        self._conn = await self._pool.acquire()
        self._committed = self.commit_in_doubt = False
        self._pipeline = Pipeline(self._conn)
        self.images, self.outbox, self.processed, self.idempotency, self.quotas = repositories(self._pipeline)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn, self._pipeline = self._conn, None, None
        if conn is None:
            return
        try:
            if not self._committed:
                await conn.rollback()
        except Exception:
            # A connection that cannot roll back is broken: drop it instead of reusing it.
            conn.close()
        finally:
            self._pool.release(conn)

    async def commit(self) -> None:
        """Send what is queued and commit everything written through this unit of work."""
        assert self._pipeline is not None, "commit() outside `async with`"
        try:
            await self._pipeline.commit()
        except BaseException as exc:
            # An error the server sent stopped the batch before its COMMIT. Anything else (a
            # broken connection, a cancellation while waiting for the answer) leaves it unknown.
            self.commit_in_doubt = outcome_unknown(exc)
            raise
        self._committed = True

    @property
    def pipeline(self) -> Pipeline:
        """The open transaction's statements (for a GroupCommit sending other units' writes)."""
        assert self._pipeline is not None, "pipeline outside `async with`"
        return self._pipeline
