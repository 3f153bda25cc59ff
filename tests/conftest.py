"""Shared fixtures: one fresh MariaDB database and one broker per session, rows cleaned per test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import aiomysql
import pytest

from adapters.db import mariadb
from adapters.kafka.client import ensure_topics
from core.dsn import DbDsn
from core.settings import Settings
from core.storage import S3, StorageUrl
from tests import services
from tests.tls import Pki

TABLES_TO_CLEAN = (
    "idempotency_keys",
    "idempotency_claims",
    "processed_events",
    "outbox",
    "image_sequence",
    "reference_versions",
    "status_history",
    "storage_objects",
    "images",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by folder, so `-m "not e2e"` or `-m integration` select a layer."""
    for item in items:
        for layer in ("integration", "e2e"):
            if f"/tests/{layer}/" in str(item.path):
                item.add_marker(getattr(pytest.mark, layer))


@pytest.fixture(autouse=True)
def _pillow_pixel_limit() -> Iterator[None]:
    """Pillow's pixel limit is a process global that converting sets: no test leaks its own to the next."""
    from PIL import Image

    kept = Image.MAX_IMAGE_PIXELS
    yield
    Image.MAX_IMAGE_PIXELS = kept


@pytest.fixture(scope="session")
def db_server() -> Iterator[DbDsn]:
    with services.mariadb_server() as dsn:
        yield dsn


@pytest.fixture(scope="session")
def database(db_server: DbDsn) -> Iterator[DbDsn]:
    dsn = services.fresh_database(db_server)
    asyncio.run(mariadb.apply_schema(dsn))
    yield dsn
    asyncio.run(services.drop_database(dsn))


@pytest.fixture(scope="session")
def tls_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DbDsn, Pki]]:
    """A private mariadbd that requires TLS (require_secure_transport), with the certificates of its CA."""
    from tests.chaos import PrivateMariaDb

    if not Path("/usr/sbin/mariadbd").exists():
        services.unavailable("mariadbd (scripts/devstack.py db installs MariaDB)")
    root = tmp_path_factory.mktemp("tls-mariadb")
    pki = Pki(root / "pki")
    server = PrivateMariaDb(
        root / "server",
        extra_args=(
            f"--ssl-ca={pki.ca}",
            f"--ssl-cert={pki.server_cert}",
            f"--ssl-key={pki.server_key}",
            "--require-secure-transport=ON",
            "--bind-address=127.0.0.1,127.0.0.2",  # 127.0.0.2: an address its certificate does not name
        ),
        ssl={"ca": str(pki.ca)},
    )
    server.install()
    server.start()
    try:
        yield replace(server.dsn, database="images_tls"), pki
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    with services.kafka_broker() as bootstrap:
        asyncio.run(ensure_topics(make_settings(bootstrap=bootstrap)))
        yield bootstrap


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with services.s3_server() as endpoint:
        yield endpoint


# The standard AWS variables, as a deployment sets them (moto accepts any key).
AWS_TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-key",
    "AWS_SECRET_ACCESS_KEY": "test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def aws(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The AWS variables of the test's S3 server, set here and returned for child processes."""
    variables = AWS_TEST_CREDENTIALS | {"AWS_ENDPOINT_URL": s3_endpoint}
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return variables


def new_bucket(endpoint: str) -> str:
    """A bucket of its own for a test, with compose's public-read policy."""
    from scripts.s3 import create_bucket

    name = f"images-{uuid.uuid4().hex[:12]}"
    create_bucket(endpoint, name)
    return name


@pytest.fixture
def bucket(s3_endpoint: str, aws: dict[str, str]) -> str:
    # Not an async fixture: parametrised fixtures reach it through request.getfixturevalue.
    return new_bucket(s3_endpoint)


@pytest.fixture
def s3_settings(settings: Settings, bucket: str, s3_endpoint: str, tmp_path: Path) -> Settings:
    """The test's settings on a bucket of its own: originals and results as objects, conversions in scratch."""
    return replace(
        settings,
        storage_url=StorageUrl(S3, bucket),
        s3_path_style=True,
        scratch_dir=str(tmp_path / "scratch"),
        base_url=f"{s3_endpoint}/{bucket}/",
    )


def make_settings(**overrides: object) -> Settings:
    """Settings for tests: small partition counts, quick relay, console logs."""
    base = Settings(
        uploaded_partitions=4,
        event_partitions=2,
        relay_poll_interval_s=0.01,
        relay_idle_interval_s=0.05,
        relay_standby_interval_s=0.2,
        worker_rebalance_timeout_s=3.0,
        convert_processes=2,
        worker_concurrency=2,
        db_pool_size=5,
        log_format="console",
    )
    names = {"bootstrap": "kafka_bootstrap"}
    return replace(base, **{names.get(k, k): v for k, v in overrides.items()})


@pytest.fixture
def settings(database: DbDsn, kafka: str, tmp_path: Path) -> Settings:
    upload_dir = tmp_path / "uploads"
    upload_dir.mkdir()
    return make_settings(db_dsn=database, bootstrap=kafka, upload_dir=str(upload_dir))


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[aiomysql.Pool]:
    pool = await mariadb.create_pool(settings.db_dsn, size=5)
    async with pool.acquire() as conn, conn.cursor() as cur:
        for table in TABLES_TO_CLEAN:
            await cur.execute(f"DELETE FROM {table}")
    yield pool
    pool.close()
    await pool.wait_closed()
