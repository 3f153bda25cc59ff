"""compose/make-secrets.sh and what docker-compose.yml does with its files (issue 27).

No Docker engine runs here, so the compose stack itself is not started; what can be checked
without one is: every secret the compose files mount is made, once; no service is given a secret
as an environment value; the brokers' certificate verifies as the service's Kafka clients connect
(`security.tls_context`, the host names the compose network uses) and not for another name; the
SASL passwords the brokers know are the ones the clients are given; botocore reads the S3 key
from the credentials file; minio-init's shell reads the same file right.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
import subprocess
from pathlib import Path

import botocore.session
import pytest
import yaml
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, pkcs12

from adapters.kafka.security import tls_context

COMPOSE = Path(__file__).resolve().parents[2] / "compose"
FILES = [COMPOSE / "docker-compose.yml", COMPOSE / "docker-compose.cluster.yml"]


def compose(index: int = 0) -> dict:
    return yaml.safe_load(FILES[index].read_text())


def make(directory: Path) -> dict[str, str]:
    subprocess.run(["sh", str(COMPOSE / "make-secrets.sh"), str(directory)], check=True, capture_output=True)
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in directory.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("compose") / "secrets"
    make(directory)
    return directory


def test_every_secret_compose_mounts_is_made_once(secrets: Path) -> None:
    for name, secret in compose()["secrets"].items():
        path = secrets / Path(secret["file"]).relative_to("secrets")
        assert path.stat().st_size > 0, name
    kafka = compose()["services"]["kafka"]
    assert "./secrets/kafka:/etc/kafka/secrets:ro" in kafka["volumes"]
    env = kafka["environment"]
    named = {
        env["KAFKA_SSL_KEYSTORE_FILENAME"],
        env["KAFKA_SSL_KEYSTORE_CREDENTIALS"],
        env["KAFKA_SSL_KEY_CREDENTIALS"],
    }
    named |= {Path(env["KAFKA_SSL_TRUSTSTORE_LOCATION"]).name, Path(env["KAFKA_OPTS"].split("=", 1)[1]).name}
    named |= set(re.findall(r"/etc/kafka/secrets/([\w.-]+)", " ".join(kafka["healthcheck"]["test"])))
    assert named == {"kafka.keystore.p12", "keystore-password", "ca.pem", "broker_jaas.conf", "admin.properties"}
    assert all((secrets / "kafka" / name).stat().st_size > 0 for name in named)
    before = {
        str(p.relative_to(secrets)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in secrets.rglob("*")
        if p.is_file()
    }
    assert make(secrets) == before, "a second run changes nothing"


def test_no_service_is_given_a_secret_as_a_value(secrets: Path) -> None:
    """A secret-looking variable names a file: `..._FILE`, a mounted secret, or a file of secrets/kafka/."""
    secret_like = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|CREDENTIALS|TOKEN", re.IGNORECASE)
    for index in range(len(FILES)):
        for name, service in compose(index)["services"].items():
            for key, value in (service.get("environment") or {}).items():
                if secret_like.search(key):
                    a_file = key.endswith("FILE") or str(value).startswith("/run/secrets/")
                    assert a_file or (secrets / "kafka" / str(value)).is_file(), f"{name}: {key}"
    example = (COMPOSE / ".env.example").read_text()
    given = re.findall(r"^(\w*(?:PASSWORD|SECRET)\w*)=(.*)$", example, flags=re.MULTILINE)
    assert all(name.endswith("_FILE") for name, value in given if value), given


def test_the_service_logs_in_to_the_brokers_it_is_given() -> None:
    env = compose()["x-image-server"]["environment"]
    assert env["IMAGES_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["IMAGES_KAFKA_BOOTSTRAP"].endswith("kafka:9094}")
    assert compose()["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"] == "SASL_SSL://kafka:9094"
    for name, broker in compose(1)["services"].items():
        if name.startswith("kafka") and name != "kafka-init":
            advertised = broker["environment"]["KAFKA_ADVERTISED_LISTENERS"]
            assert advertised == f"SASL_SSL://{name}:9094", name


def test_the_sasl_passwords_the_brokers_know_are_the_clients(secrets: Path) -> None:
    jaas = (secrets / "kafka" / "broker_jaas.conf").read_text()
    users = dict(re.findall(r'user_(\w+)="([^"]+)"', jaas))
    assert users == {
        "admin": (secrets / "kafka" / "admin-password").read_text().strip(),
        "images": (secrets / "kafka-password").read_text().strip(),
    }
    admin = (secrets / "kafka" / "admin.properties").read_text()
    assert f'username="admin" password="{users["admin"]}";' in admin and "security.protocol=SASL_SSL" in admin


async def handshake(ca: str, port: int, name: str) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls_context(ca, "", ""), server_hostname=name)
    writer.close()
    await writer.wait_closed()


async def test_the_brokers_certificate_verifies_as_the_service_connects(secrets: Path, tmp_path: Path) -> None:
    password = (secrets / "kafka" / "keystore-password").read_bytes().strip()
    key, cert, _ = pkcs12.load_key_and_certificates((secrets / "kafka" / "kafka.keystore.p12").read_bytes(), password)
    assert key is not None and cert is not None
    (tmp_path / "broker.pem").write_bytes(
        key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()) + cert.public_bytes(Encoding.PEM)
    )
    serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    serving.load_cert_chain(tmp_path / "broker.pem")

    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=serving)
    port = server.sockets[0].getsockname()[1]
    ca = str(secrets / "kafka-ca.pem")
    try:
        for name in ("kafka", "kafka-2", "kafka-3", "localhost"):
            await handshake(ca, port, name)
        with pytest.raises(ssl.SSLCertVerificationError):
            await handshake(ca, port, "kafka.elsewhere.example")
    finally:
        server.close()
        await server.wait_closed()


def test_botocore_reads_the_service_s3_key_from_the_credentials_file(
    secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(secrets / "s3-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(secrets / "no-such-config"))
    credentials = botocore.session.Session().get_credentials()
    assert credentials is not None and credentials.access_key == "images-app"
    assert f"aws_secret_access_key={credentials.secret_key}" in (secrets / "s3-credentials").read_text()


def test_minio_init_reads_the_same_key_and_the_administrator(secrets: Path) -> None:
    """Run minio-init's own lines up to its first `mc` call, with the secrets where compose mounts them."""
    script = compose()["services"]["minio-init"]["command"][0].replace("$$", "$")
    reading = script.split("mc alias", 1)[0].replace("/run/secrets/", f"{secrets}/")
    names = {
        "minio_root_user": "minio-root-user",
        "minio_root_password": "minio-root-password",
        "s3_credentials": "s3-credentials",
    }
    for mounted, made in names.items():
        reading = reading.replace(f"{secrets}/{mounted}", str(secrets / made))
    done = subprocess.run(
        ["sh", "-ec", reading + 'echo "$ROOT_USER $ROOT_PASSWORD $APP_KEY $APP_SECRET"'],
        capture_output=True,
        text=True,
        check=True,
    )
    user, password, key, secret = done.stdout.split()
    assert (user, password) == (
        (secrets / "minio-root-user").read_text().strip(),
        (secrets / "minio-root-password").read_text().strip(),
    )
    assert key == "images-app" and f"aws_secret_access_key={secret}\n" in (secrets / "s3-credentials").read_text()
