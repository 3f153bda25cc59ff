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
