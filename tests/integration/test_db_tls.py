"""MariaDB over TLS (issue 27) against a private mariadbd that requires it (require_secure_transport=ON).

The certificates are made by the fixture (tests/tls.py). Every pool goes through
`adapters.db.mariadb.connect_kwargs`, so the schema set-up, a pool and the api are checked here;
the e2e test runs the api, a worker and the relay on it.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import aiohttp
import pymysql
import pytest

from adapters.db import mariadb, tls
from core.dsn import DbDsn, DbTls
from core.settings import Settings, SettingsError
from tests import images
from tests.integration.conftest import ClientFactory
from tests.processes import ROOT, settings_env
from tests.tls import Pki


def with_tls(dsn: DbDsn, pki: Pki, **overrides: object) -> DbDsn:
    return replace(dsn, tls=replace(DbTls(str(pki.ca)), **overrides))  # type: ignore[arg-type]


async def cipher(dsn: DbDsn) -> str:
    pool = await mariadb.create_pool(dsn, size=1)
    try:
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            return str((await cur.fetchone())[1])
    finally:
        pool.close()
        await pool.wait_closed()


async def test_a_pool_with_the_ca_connects_over_tls_and_applies_the_schema(tls_db: tuple[DbDsn, Pki]) -> None:
    dsn, pki = tls_db
    secured = with_tls(dsn, pki)
    await mariadb.apply_schema(secured)
    assert await cipher(secured)  # a cipher suite: the session is encrypted
    mutual = with_tls(dsn, pki, cert=str(pki.client_cert), key=str(pki.client_key))
    assert await cipher(mutual)


async def test_without_tls_the_server_refuses_and_it_is_not_waited_for(tls_db: tuple[DbDsn, Pki]) -> None:
    dsn, _ = tls_db
    with pytest.raises(pymysql.err.OperationalError) as refused:
        await mariadb.create_pool(dsn, size=1)
    assert refused.value.args[0] in (1045, 3159), refused.value  # access denied, or insecure transport
    assert not mariadb.worth_waiting_for(refused.value)


async def test_a_wrong_ca_or_a_wrong_name_is_refused(tls_db: tuple[DbDsn, Pki]) -> None:
    dsn, pki = tls_db
    for wrong in (with_tls(dsn, pki, ca=str(pki.other_ca)), replace(with_tls(dsn, pki), host="127.0.0.2")):
        with pytest.raises(pymysql.err.OperationalError) as refused:
            await mariadb.create_pool(wrong, size=1)
        assert not mariadb.worth_waiting_for(refused.value), refused.value
    # The name check can be turned off (a server known by an address its certificate does not list).
    assert await cipher(replace(with_tls(dsn, pki, verify_identity=False), host="127.0.0.2"))


async def test_a_server_that_does_not_offer_tls_is_refused_when_tls_is_asked(
    db_server: DbDsn, tls_db: tuple[DbDsn, Pki]
) -> None:
    _, pki = tls_db
    plain = replace(db_server, unix_socket=None)
    with pymysql.connect(host=plain.host, port=plain.port, user=plain.user, password=plain.password) as conn:
        with conn.cursor() as cur:
            cur.execute("SHOW GLOBAL VARIABLES LIKE 'have_ssl'")
            offered = cur.fetchone()[1] == "YES"
    if offered:
        pytest.skip("this machine's MariaDB offers TLS: nothing to strip")  # Debian's 10.11 does not
    with pytest.raises(pymysql.err.OperationalError) as refused:
        await mariadb.create_pool(with_tls(plain, pki), size=1)
    assert refused.value.args[0] == 2026 and "does not offer" in str(refused.value)


def test_an_unreadable_ca_stops_at_start_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="IMAGES_DB_TLS_CA"):
        tls.ssl_context(DbTls(str(tmp_path / "absent.pem")))


async def test_the_api_serves_uploads_over_a_tls_only_database(
    tls_db: tuple[DbDsn, Pki], settings: Settings, make_client: ClientFactory
) -> None:
    dsn, pki = tls_db
    secured = replace(settings, db_dsn=with_tls(dsn, pki))
    await mariadb.apply_schema(secured.db_dsn)
    api = await make_client(secured)
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(images.png()), filename="a.png", content_type="image/png")
    form.add_field("uploaderId", "tls")
    form.add_field("category", "POST")
    r = await api.post("/api/images", data=form)
    assert r.status == 200, await r.text()
    assert (await api.get(f"/api/v1/images/{(await r.json())['id']}")).status == 200
    health = await (await api.get("/actuator/health")).json()
    assert health["components"]["db"]["status"] == "UP"


async def test_a_process_without_tls_settings_stops_at_start_with_the_servers_refusal(
    tls_db: tuple[DbDsn, Pki], settings: Settings
) -> None:
    dsn, pki = tls_db
    for name, wrong in {
        "no TLS": replace(settings, db_dsn=dsn),
        "a wrong CA": replace(settings, db_dsn=dsn, db_tls_ca=str(pki.other_ca)),
    }.items():
        env = {**settings_env(wrong), "PATH": "/usr/bin:/bin", "IMAGES_LOG_FORMAT": "json"}
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "outbox"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0, name
        said = done.stdout + done.stderr
        refusal = next(line for line in said.splitlines() if '"database_refused"' in line)
        assert "Access denied" in refusal or "insecure transport" in refusal or "CERTIFICATE_VERIFY_FAILED" in refusal
        assert "service_unavailable" not in said, name  # refused at once, not waited for
