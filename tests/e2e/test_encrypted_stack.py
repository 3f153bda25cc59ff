"""The api, a relay and a worker on encrypted connections only (issue 27): MariaDB and Kafka over TLS.

MariaDB is a private mariadbd that requires TLS (require_secure_transport=ON); the broker is a
tansu behind a TLS-terminating proxy, advertising the proxy's address, so every Kafka client of
the service (the relay's producer, Faust's consumer and producer, the admin and health clients)
runs its TLS path for real. Certificates are made by the fixture (tests/tls.py).

A successful SASL login is not run live: tansu's `--authentication` (SCRAM) cannot be given a
user here (its `user create` succeeds only against a broker without authentication, and memory
storage keeps users per process). tests/unit/test_connection_settings.py shows the SASL settings
reach aiokafka and Faust exactly; tests/integration/test_kafka_login.py runs a refused login live.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pymysql
import pytest

from adapters.db import mariadb
from adapters.kafka.client import ensure_topics
from adapters.kafka.security import client_auth
from core.dsn import DbDsn, DbTls
from tests import images, services
from tests.e2e.client import ImageClient
from tests.e2e.conftest import Stack, running_stack, stack_settings
from tests.e2e.test_stack import wait_ready
from tests.kafka_reader import read_messages
from tests.processes import ROOT, settings_env
from tests.proxy import ProxyThread, TcpProxy
from tests.tls import Pki

# Known values of every secret the stack holds: no log line, metric or health answer may carry one.
SECRETS = {
    "db": f"db-{uuid.uuid4().hex}",
    "sasl": f"sasl-{uuid.uuid4().hex}",
    "aws": f"aws-{uuid.uuid4().hex}",
}


def database_user(dsn: DbDsn, pki: Pki, password: str) -> DbDsn:
    """A user of its own on the TLS server, with a password and TLS required (`REQUIRE SSL`)."""
    with (
        pymysql.connect(host=dsn.host, port=dsn.port, user="root", ssl={"ca": str(pki.ca)}) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{dsn.database}`")
        cur.execute("CREATE USER IF NOT EXISTS 'images'@'127.0.0.1' IDENTIFIED BY %s REQUIRE SSL", (password,))
        cur.execute(f"GRANT ALL ON `{dsn.database}`.* TO 'images'@'127.0.0.1'")
    return replace(dsn, user="images", password="")


@pytest.fixture(scope="module")
def encrypted(tls_db: tuple[DbDsn, Pki], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    dsn, pki = tls_db
    dsn = database_user(replace(dsn, database=f"images_encrypted_{uuid.uuid4().hex[:8]}"), pki, SECRETS["db"])
    broker_port, proxy_port = services.free_port(), services.free_port()
    broker = services.Tansu(broker_port, proxy_port)  # clients are told the proxy's address
    terminating = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    terminating.load_cert_chain(pki.server_cert, pki.server_key)
    root = tmp_path_factory.mktemp("encrypted")
    (root / "db-password").write_text(SECRETS["db"] + "\n")
    settings = stack_settings(
        replace(dsn, tls=DbTls(str(pki.ca))),
        f"127.0.0.1:{proxy_port}",
        root,
        db_tls_ca=str(pki.ca),
        db_password_file=str(root / "db-password"),  # the processes read it; the DSN has none
        kafka_security_protocol="SSL",
        kafka_tls_ca=str(pki.ca),
        kafka_sasl_username="images",  # unused with SSL, and still never to be logged
        kafka_sasl_password=SECRETS["sasl"],
    )
    in_process = replace(settings, db_dsn=replace(settings.db_dsn, password=SECRETS["db"]))
    broker.start()
    try:
        with ProxyThread(TcpProxy(proxy_port, broker_port, tls=terminating)):
            asyncio.run(mariadb.apply_schema(in_process.db_dsn))
            asyncio.run(ensure_topics(settings))
            with running_stack(settings, root, env={"AWS_SECRET_ACCESS_KEY": SECRETS["aws"]}) as stack:
                yield stack
    finally:
        broker.stop()


async def test_an_upload_becomes_ready_and_its_confirm_is_announced_over_tls_only(encrypted: Stack) -> None:
    settings = encrypted.settings
    api = ImageClient(f"http://127.0.0.1:{settings.api_port}")
    try:
        status, (body,) = await api.upload([("photo.jpg", images.jpeg(300, 200))], category="PRODUCT")
        assert status == 200, body
        image = await wait_ready(api, body["id"])  # the relay published over TLS, the worker consumed over TLS
        assert image["status"] == "READY"
        reference = f"tls-{body['id'][:8]}"
        assert (await api.confirm(reference, [body["id"]]))[0] == 200
        status, health = await api.get("/actuator/health")
        assert status == 200, health
    finally:
        await api.close()
    (event,) = await read_messages(
        settings.kafka_bootstrap,
        "product-image-changed",
        match=lambda m: m.key == reference,
        count=1,
        security=client_auth(settings),
    )
    assert event.value["payload"]["images"][0]["imageId"] == body["id"]


async def test_a_client_with_a_wrong_ca_is_refused_by_broker_and_database(
    encrypted: Stack, tls_db: tuple[DbDsn, Pki]
) -> None:
    _, pki = tls_db
    for component, wrong in {
        "kafka": replace(encrypted.settings, kafka_tls_ca=str(pki.other_ca)),
        "db": replace(encrypted.settings, db_tls_ca=str(pki.other_ca)),
    }.items():
        env = {**settings_env(wrong), "PATH": os.environ["PATH"], "IMAGES_LOG_FORMAT": "json"}
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "workers", "health"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        said = done.stdout + done.stderr
        assert done.returncode == 1, said[-2000:]
        assert f"{component}=DOWN" in done.stdout, said[-2000:]
        # The verdict's reason (the database's), or aiokafka's log line of the refused handshake (the broker's).
        assert "certificate verify failed" in said.lower(), said[-2000:]


async def test_a_worker_or_relay_refused_by_the_broker_stops_with_one_line_not_tracebacks(
    encrypted: Stack, tls_db: tuple[DbDsn, Pki]
) -> None:
    _, pki = tls_db
    wrong = replace(encrypted.settings, kafka_tls_ca=str(pki.other_ca), worker_app_id="refused-workers")
    env = {**settings_env(wrong), "PATH": os.environ["PATH"], "IMAGES_LOG_FORMAT": "json"}
    for args in (["workers", "worker"], ["outbox"]):
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        said = done.stdout + done.stderr
        assert done.returncode == 2, said[-2000:]
        refused = [line for line in said.splitlines() if '"kafka_refused"' in line]
        assert len(refused) == 1 and "CERTIFICATE_VERIFY_FAILED" in refused[0], said[-2000:]
        assert "Traceback" not in said, said[-2000:]


async def test_no_secret_reaches_a_log_line_a_metric_or_a_health_answer(encrypted: Stack) -> None:
    """Runs last in this module: every process has logged its start, requests and conversions by now."""
    settings = encrypted.settings
    api = ImageClient(f"http://127.0.0.1:{settings.api_port}")
    answers: list[bytes] = []
    try:
        for path in ("/metrics", "/actuator/health", "/health"):
            answers.append((await api.get(path))[1])
        answers.append((await api.get(f"http://127.0.0.1:{encrypted.worker_metrics_port}/metrics"))[1])
        answers.append((await api.get(f"http://127.0.0.1:{encrypted.relay_metrics_port}/metrics"))[1])
    finally:
        await api.close()
    env = {**settings_env(settings), "PATH": os.environ["PATH"], "IMAGES_LOG_FORMAT": "json"}
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "workers", "health"], cwd=ROOT, env=env, capture_output=True, timeout=60
    )
    answers += [done.stdout, done.stderr]
    logs = {name: p.log() for name, p in encrypted.processes.items()}
    assert all(logs.values()) and b"images_total" in answers[0]
    for what, secret in SECRETS.items():
        leaked = [name for name, text in logs.items() if secret in text]
        leaked += [f"answer {n}" for n, body in enumerate(answers) if secret.encode() in body]
        assert not leaked, f"the {what} secret appears in {leaked}"
