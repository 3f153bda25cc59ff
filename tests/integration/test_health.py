"""Health components against real services, taken away and given back."""

from __future__ import annotations

from dataclasses import replace

import aiomysql
import pytest

from core.settings import Settings
from tests import services
from tests.integration.conftest import ClientFactory
from tests.proxy import TcpProxy


async def test_plain_health_answers_text(client) -> None:  # type: ignore[no-untyped-def]
    r = await client.get("/health")
    assert (r.status, await r.text(), r.content_type) == (200, "Server is up", "text/plain")


async def test_actuator_health_is_up_with_four_components(client) -> None:  # type: ignore[no-untyped-def]
    r = await client.get("/actuator/health")
    body = await r.json()
    assert (r.status, body["status"]) == (200, "UP")
    assert {k: v["status"] for k, v in body["components"].items()} == {
        "db": "UP",
        "diskSpace": "UP",
        "kafka": "UP",
        "fileSystem": "UP",
    }
    assert body["components"]["fileSystem"]["details"]["writable"] is True


async def test_enum_endpoints_read_the_reference_tables(client) -> None:  # type: ignore[no-untyped-def]
    ext = await (await client.get("/api/v1/enums/extensions")).json()
    types = await (await client.get("/api/v1/enums/referenceType")).json()
    assert ext["HEIC"] == "High Efficiency Image File Format" and len(ext) == 12
    assert types == {
        "PRODUCT": "상품",
        "POST": "게시글",
        "BANNER": "배너",
        "CATEGORY": "카테고리",
        "PROFILE": "프로필",
        "USER_BACKGROUND": "사용자 배경",
    }


async def test_the_original_services_enum_paths_answer_in_its_shape(client) -> None:  # type: ignore[no-untyped-def]
    ext = await (await client.get("/api/extensions")).json()
    types = await (await client.get("/api/referenceType")).json()
    assert ext["JPG"] == {"code": "JPG", "name": "JPEG Image"} and len(ext) == 12
    assert types["PRODUCT"] == {
        "code": "PRODUCT",
        "name": "상품",
        "allowsMultiple": True,
        "maxImages": 10,
        "description": "Product images, ordered",
    }
    assert types["BANNER"]["maxImages"] is None and types["PROFILE"]["allowsMultiple"] is False
    assert set(types) == set(await (await client.get("/api/v1/enums/referenceType")).json())


async def test_enum_endpoint_shows_a_reloaded_cache(client, pool: aiomysql.Pool) -> None:  # type: ignore[no-untyped-def]
    from api import keys

    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            "INSERT INTO extensions (code, name) VALUES ('TIFF', 'Tagged Image') ON DUPLICATE KEY UPDATE name=name"
        )
    try:
        await client.app[keys.REFERENCES].reload()
        ext = await (await client.get("/api/v1/enums/extensions")).json()
        assert ext["TIFF"] == "Tagged Image"
    finally:
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute("DELETE FROM extensions WHERE code = 'TIFF'")


async def health_of(client) -> tuple[int, dict[str, str]]:  # type: ignore[no-untyped-def]
    r = await client.get("/actuator/health")
    body = await r.json()
    return r.status, {k: v["status"] for k, v in body["components"].items()}


async def test_health_goes_down_when_the_database_is_away_and_up_when_it_returns(
    settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory
) -> None:
    proxy = TcpProxy(services.free_port(), settings.db_dsn.port)
    await proxy.start()
    dsn = replace(settings.db_dsn, port=proxy.port)
    client = await make_client(replace(settings, db_dsn=dsn))
    assert (await health_of(client))[0] == 200

    await proxy.cut()
    status, components = await health_of(client)
    assert (status, components["db"], components["kafka"]) == (503, "DOWN", "UP")

    await proxy.restore()
    await services.eventually(lambda: _is_up(client), timeout_s=15, what="health UP after the database returned")
    await proxy.cut()


async def _is_up(client) -> bool:  # type: ignore[no-untyped-def]
    return (await health_of(client))[0] == 200


@pytest.fixture
def own_broker():  # type: ignore[no-untyped-def]
    port = services.free_port()
    broker = services.Tansu(port, port)
    broker.start()
    yield broker
    broker.stop()


async def test_health_goes_down_when_the_broker_stops_and_up_when_it_returns(
    settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory, own_broker: services.Tansu
) -> None:
    client = await make_client(replace(settings, kafka_bootstrap=own_broker.bootstrap))
    assert (await health_of(client))[0] == 200

    own_broker.stop()
    status, components = await health_of(client)
    assert (status, components["kafka"], components["db"]) == (503, "DOWN", "UP")

    own_broker.start()
    await services.eventually(lambda: _is_up(client), timeout_s=15, what="health UP after the broker returned")
