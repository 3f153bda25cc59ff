"""S3 over HTTPS with a custom CA (issue 27): the standard AWS_CA_BUNDLE, against moto serving TLS.

botocore reads AWS_CA_BUNDLE itself: nothing of the service's own names the CA, which is why the
test sets only that variable. Without it, the store's certificate (signed by the fixture's CA)
is refused at the store's opening, naming the failure, and not waited for.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from adapters.s3.bucket import S3Bucket
from core.ports import StoreUnavailable
from core.settings import Settings
from core.storage import S3, StorageUrl
from scripts.s3 import create_bucket, moto_command
from tests import images, services
from tests.conftest import AWS_TEST_CREDENTIALS
from tests.integration.conftest import ClientFactory
from tests.tls import Pki


@pytest.fixture(scope="module")
def https_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Pki]]:
    pki = Pki(tmp_path_factory.mktemp("s3-pki"))
    port = services.free_port()
    try:
        command = [*moto_command(port), "-c", str(pki.server_cert), "-k", str(pki.server_key)]
    except FileNotFoundError as exc:
        services.unavailable(str(exc))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        services.wait_until(lambda: services.port_answers(port), timeout_s=30, what="moto_server over TLS")
        yield f"https://127.0.0.1:{port}", pki
    finally:
        services.stop_process(process, timeout_s=10)


@pytest.fixture
def aws_https(https_s3: tuple[str, Pki], monkeypatch: pytest.MonkeyPatch) -> str:
    endpoint, pki = https_s3
    for name, value in (AWS_TEST_CREDENTIALS | {"AWS_ENDPOINT_URL": endpoint, "AWS_CA_BUNDLE": str(pki.ca)}).items():
        monkeypatch.setenv(name, value)
    bucket = f"tls-{Path(str(pki.root)).name[-8:].lower().replace('_', '-')}"
    create_bucket(endpoint, bucket)
    return bucket


async def test_uploads_are_stored_on_s3_over_https_with_the_ca_of_aws_ca_bundle(
    aws_https: str, https_s3: tuple[str, Pki], settings: Settings, make_client: ClientFactory, tmp_path: Path
) -> None:
    endpoint, _ = https_s3
    on_s3 = replace(
        settings,
        storage_url=StorageUrl(S3, aws_https),
        s3_path_style=True,
        scratch_dir=str(tmp_path / "scratch"),
        base_url=f"{endpoint}/{aws_https}/",
    )
    api = await make_client(on_s3)
    form = aiohttp.FormData()
    form.add_field("file", images.png(), filename="a.png", content_type="image/png")
    form.add_field("uploaderId", "tls")
    form.add_field("category", "POST")
    r = await api.post("/api/images", data=form)
    assert r.status == 200, await r.text()
    health = await (await api.get("/actuator/health")).json()
    assert health["components"]["fileSystem"]["status"] == "UP"


async def test_without_the_ca_the_stores_certificate_is_refused(
    aws_https: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_CA_BUNDLE")
    with pytest.raises(Exception) as refused:
        async with S3Bucket.open(aws_https, path_style=True):
            pass
    assert not isinstance(refused.value, StoreUnavailable)  # a refusal stops the start: no waiting it out
    assert "certificate verify failed" in str(refused.value).lower(), repr(refused.value)
