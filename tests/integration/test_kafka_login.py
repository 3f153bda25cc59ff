"""A broker that refuses the service's SASL login (issue 27): one clear line and a failing health check.

tansu with `--authentication` requires SCRAM and knows no user (its `user create` works only
against a broker without authentication, and memory storage keeps users per process), so every
login is refused: the case an operator meets with a wrong password or a user not yet created.
A successful SASL login is not run live here (docs/security.md says so); the settings reaching
aiokafka and Faust exactly is tests/unit/test_connection_settings.py.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace

import pytest

from core.settings import Settings
from tests import services
from tests.processes import ROOT, settings_env

PASSWORD = "sasl-password-never-logged"


@pytest.fixture(scope="module")
def refusing_broker() -> Iterator[str]:
    port = services.free_port()
    broker = services.Tansu(port, port, authentication=True)
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


def run(settings: Settings, *args: str) -> tuple[int, str, str]:
    env = {**settings_env(settings), "PATH": os.environ["PATH"], "IMAGES_LOG_FORMAT": "json"}
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def sasl(settings: Settings, refusing_broker: str) -> Settings:
    return replace(
        settings,
        kafka_bootstrap=refusing_broker,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="images",
        kafka_sasl_password=PASSWORD,
        worker_app_id="refused-login",
    )


@pytest.mark.parametrize("command", [("workers", "worker"), ("outbox",)], ids=["worker", "relay"])
async def test_a_refused_login_stops_a_worker_or_relay_with_one_line(sasl: Settings, command: tuple[str, ...]) -> None:
    rc, out, err = await asyncio.to_thread(run, sasl, *command)
    said = out + err
    assert rc == 2, said[-2000:]
    refused = [line for line in said.splitlines() if '"kafka_refused"' in line]
    assert len(refused) == 1 and "SCRAM-SHA-512 login to" in refused[0], said[-2000:]
    assert "Traceback" not in said and PASSWORD not in said, said[-2000:]


async def test_a_refused_login_is_a_down_kafka_in_health_with_its_reason(sasl: Settings) -> None:
    rc, out, err = await asyncio.to_thread(run, sasl, "workers", "health")
    assert rc == 1 and "kafka=DOWN" in out, (out + err)[-2000:]
    assert "login to" in out and "refused" in out, (out + err)[-2000:]
    assert PASSWORD not in out + err


async def test_the_same_settings_against_a_broker_that_is_down_wait_rather_than_refuse(sasl: Settings) -> None:
    """Refused and down are told apart: a closed port is an outage (health DOWN, no `refused`)."""
    down = replace(sasl, kafka_bootstrap=f"127.0.0.1:{services.free_port()}")
    rc, out, err = await asyncio.to_thread(run, down, "workers", "health")
    assert rc == 1 and "kafka=DOWN" in out and "refused" not in out, (out + err)[-2000:]
