"""One leader among a shell's replicas: a MariaDB GET_LOCK held on its own connection.

A lock dies with its connection, so a killed or partitioned holder hands over as soon as the
server notices the session is gone; the others try again at their own pace.
"""

from __future__ import annotations

import aiomysql

from adapters.db import mariadb
from core.dsn import DbDsn


class LeaderLock:
    """A named server-wide lock, held (or not) by this process."""

    def __init__(self, dsn: DbDsn, name: str) -> None:
        self._dsn = dsn
        self.name = name
        self._conn: aiomysql.Connection | None = None
        self.held = False

    async def acquire(self) -> bool:
        """Try the lock without waiting; return whether this process holds it now."""
        if self._conn is None:
            self._conn = await aiomysql.connect(**mariadb.connect_kwargs(self._dsn))
        async with self._conn.cursor() as cur:
            await cur.execute("SELECT GET_LOCK(%s, 0)", (self.name,))
            (got,) = await cur.fetchone()
        self.held = got == 1
        return self.held

    async def still_held_and(self, condition: str) -> bool:
        """Whether `condition` (an SQL boolean) holds, read on the lock's own connection in the same
        round trip as the check that the lock is still this process's; raise when it is not."""
        assert self._conn is not None
        async with self._conn.cursor() as cur:
            await cur.execute(f"SELECT IS_USED_LOCK(%s) = CONNECTION_ID(), {condition}", (self.name,))
            mine, pending = await cur.fetchone()
        if mine != 1:
            raise RuntimeError("relay lost the leader lock")
        return bool(pending)

    def release(self) -> bool:
        """Let the lock go (closing the session releases it); return whether it was held."""
        conn, self._conn = self._conn, None
        was_held, self.held = self.held, False
        if conn is not None:
            conn.close()
        return was_held
