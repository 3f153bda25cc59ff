"""A Pipeline's values reach MariaDB exactly as given, whatever they hold, in either escaping mode."""

from __future__ import annotations

from datetime import datetime

import aiomysql
import pytest

from adapters.db.statements import Pipeline, Table

LITERALS = Table("literals", ("n", "s", "t", "flag", "ratio"))
ROWS = [
    (
        1,
        "it's a \\ back\\slash \" quote'); DROP TABLE images; --",
        datetime(2026, 12, 8, 4, 5, 6, 789),
        True,
        0.25,
    ),
    (2, "ünïcødé 🖼\n\t\r\x1a\0", datetime(999, 1, 2, 3, 4, 5), False, -1e-3),
    (-(2**40), "", datetime(2026, 1, 1), None, None),
    (3, None, None, None, None),
]


@pytest.mark.parametrize("sql_mode", ["", "NO_BACKSLASH_ESCAPES"])
async def test_rows_inserted_and_read_back_unchanged(pool: aiomysql.Pool, sql_mode: str) -> None:
    async with pool.acquire() as conn:
        async with conn.cursor() as cur:
            await cur.execute("SET SESSION sql_mode = %s", (sql_mode,))
            await cur.execute(
                "CREATE TEMPORARY TABLE literals (n BIGINT PRIMARY KEY, s VARCHAR(200) NULL, t DATETIME(6) NULL,"
                " flag TINYINT NULL, ratio DOUBLE NULL) CHARSET utf8mb4"
            )
        try:
            pipeline = Pipeline(conn)
            pipeline.insert(LITERALS, ROWS[:2])
            pipeline.insert(LITERALS, ROWS[2:])
            read = await pipeline.fetchall("SELECT n, s, t, flag, ratio FROM literals WHERE n <> %s ORDER BY n", (0,))
            await pipeline.commit()
        finally:
            async with conn.cursor() as cur:
                await cur.execute("DROP TEMPORARY TABLE literals")
                await cur.execute("SET SESSION sql_mode = DEFAULT")
    expected = sorted(ROWS, key=lambda r: r[0])
    assert [(n, s, t, None if f is None else bool(f), r) for n, s, t, f, r in read] == expected
