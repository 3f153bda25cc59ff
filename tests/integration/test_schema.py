from __future__ import annotations

import aiomysql

from adapters.db import mariadb
from core.settings import Settings
from tests.integration.conftest import fetch_all


async def test_schema_applied_twice_over_data_changes_nothing(settings: Settings, pool: aiomysql.Pool) -> None:
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            "INSERT INTO images (image_id, status, reference_type_id, image_url, created_at, updated_at)"
            " VALUES ('keep-me', 'READY', 'POST', 'u', NOW(6), NOW(6))"
        )
        await cur.execute("UPDATE reference_types SET description = 'edited by ops' WHERE code = 'POST'")
    before = await fetch_all(pool, "SELECT code, name, allows_multiple, max_images FROM reference_types ORDER BY code")

    await mariadb.apply_schema(settings.db_dsn)
    await mariadb.apply_schema(settings.db_dsn)

    assert await fetch_all(pool, "SELECT image_id, status FROM images") == [("keep-me", "READY")]
    assert await fetch_all(pool, "SELECT description FROM reference_types WHERE code = 'POST'") == [("edited by ops",)]
    assert (
        await fetch_all(pool, "SELECT code, name, allows_multiple, max_images FROM reference_types ORDER BY code")
        == before
    )
    assert len(await fetch_all(pool, "SELECT code FROM extensions")) == 12


async def test_schema_seeds_the_contract_reference_types(pool: aiomysql.Pool) -> None:
    rows = await fetch_all(pool, "SELECT code, allows_multiple, max_images FROM reference_types ORDER BY code")
    assert rows == [
        ("BANNER", 1, None),
        ("CATEGORY", 0, 1),
        ("POST", 1, 20),
        ("PRODUCT", 1, 10),
        ("PROFILE", 0, 1),
        ("USER_BACKGROUND", 0, 1),
    ]


async def test_make_reset_leaves_an_empty_database_with_the_schema(settings: Settings) -> None:
    """`make reset` (scripts/devstack.py reset): an earlier run's rows are gone, the schema and its seeds are there."""
    import asyncio
    import os
    import subprocess
    import sys
    from dataclasses import replace

    from tests import services
    from tests.processes import ROOT, settings_env

    own = replace(settings, db_dsn=services.fresh_database(settings.db_dsn))  # not the session's: it is dropped
    await mariadb.apply_schema(own.db_dsn)
    pool = await mariadb.create_pool(own.db_dsn, size=1)
    try:
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(
                "INSERT INTO images (image_id, status, reference_type_id, image_url) VALUES ('left', 'FAILED', 'POST', 'u')"
            )
            await conn.commit()
        assert await fetch_all(pool, "SELECT COUNT(*) FROM images") == [(1,)]
        pool.close()
        await pool.wait_closed()
        env = {**os.environ, **settings_env(own)}
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "scripts/devstack.py", "reset"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        pool = await mariadb.create_pool(own.db_dsn, size=1)
        assert await fetch_all(pool, "SELECT COUNT(*) FROM images") == [(0,)]
        assert (await fetch_all(pool, "SELECT COUNT(*) FROM reference_types"))[0][0] == 6
    finally:
        pool.close()
        await pool.wait_closed()
        await services.drop_database(own.db_dsn)
