"""The fleet of `make run-fleet` (issue 14): nginx with compose/nginx.conf in front of 3 api replicas,
2 workers and 2 relays on S3 (moto), each api and worker with a scratch directory of its own and no
other directory: replicas share only MariaDB, the broker and the bucket, as they would across hosts.

Everything goes through nginx: uploads, confirms, the images from the bucket, health, with a bearer
token (the fleet runs with IMAGES_AUTH=jwt). One test kills one api replica while uploads go on;
the last sends more requests than nginx's per-address limit lets through.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiohttp
import pytest

from adapters.auth.tokens import mint
from core.dsn import DbDsn
from core.settings import Settings
from core.storage import S3, StorageUrl
from scripts import fleet as plan
from scripts.s3 import create_bucket
from tests import images, services
from tests.conftest import AWS_TEST_CREDENTIALS, make_settings
from tests.e2e.conftest import Stack, worker_ready
from tests.e2e.test_stack import wait_ready
from tests.kafka_reader import read_messages
from tests.processes import ROOT, settings_env

IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass
class Fleet(Stack):
    nginx: str = ""  # nginx's URL: every request of the tests goes through it
    aws: dict[str, str] = field(default_factory=dict)  # the AWS_* variables of the replicas and the CLI
    token: str = ""  # a bearer token of uploader "fleet", with every scope

    def session(self) -> aiohttp.ClientSession:
        """An HTTP client sending the fleet's token with every request (the fleet runs with IMAGES_AUTH=jwt)."""
        return aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}"})

    def members_named(self, prefix: str) -> list[str]:
        return [n for n in self.processes if n.startswith(prefix)]

    def scratch_dirs(self) -> list[Path]:
        return [self.log_dir / "scratch" / n for n in self.members_named("api-") + self.members_named("worker-")]


@pytest.fixture(scope="module")
def fleet(database: DbDsn, kafka: str, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if not Path(plan.NGINX).exists():
        services.unavailable("nginx (python scripts/devstack.py tools installs Debian's)")
    root = tmp_path_factory.mktemp("fleet")
    nginx_port, api_ports = services.free_port(), [services.free_port() for _ in range(plan.API_REPLICAS)]
    secret = plan.ensure_secret(root / "jwt-secret")
    aws = AWS_TEST_CREDENTIALS | plan.fleet_settings(s3_endpoint=s3_endpoint, nginx_port=nginx_port, secret_file=secret)
    settings = replace(
        make_settings(db_dsn=database, bootstrap=kafka, upload_dir=str(root / "no-such-dir")),
        storage_url=StorageUrl(S3, plan.BUCKET),
        s3_path_style=True,
        base_url=f"http://127.0.0.1:{nginx_port}/images/",
        serve_images=False,
        worker_app_id=f"fleet-workers-{nginx_port}",
    )
    signer = Settings(auth_hs256_secret_file=str(secret), auth_issuer=plan.ISSUER, auth_audience=plan.AUDIENCE)
    token = mint(signer, "fleet", scopes=["images:upload", "images:read", "images:confirm"], ttl_s=3600)
    s = Fleet(settings, root, nginx=f"http://127.0.0.1:{nginx_port}", aws=aws, token=token)
    with pytest.MonkeyPatch.context() as env:
        for name, value in aws.items():
            env.setenv(name, value)  # the test's own S3 clients, and create_bucket
        create_bucket(s3_endpoint, plan.BUCKET)
        members = plan.members(
            api_ports=api_ports,
            worker_metrics=[services.free_port() for _ in range(plan.WORKERS)],
            relay_metrics=[services.free_port() for _ in range(plan.RELAYS)],
            scratch=root / "scratch",
        )
        try:
            for member in members:
                s.start(member.name, list(member.args), env=aws | member.env)
            main = plan.nginx_files(
                root / "nginx", listen_port=nginx_port, api_ports=api_ports, s3_port=int(s3_endpoint.rsplit(":", 1)[1])
            )
            s.start("nginx", plan.nginx_command(main), command=True)
            for port in [nginx_port, *api_ports]:
                services.wait_until(lambda p=port: services.port_answers(p), timeout_s=60, what=f"port {port}")
            for name in s.members_named("worker-"):
                services.wait_until(lambda n=name: worker_ready(s.processes[n]), timeout_s=90, what=f"{name} ready")
            yield s
        except BaseException:
            print(s.logs())
            raise
        finally:
            codes = {name: p.terminate() for name, p in reversed(list(s.processes.items())) if p.alive()}
            bad = {n: c for n, c in codes.items() if c != 0}
            if bad:
                print(s.logs())
            assert not bad, f"processes did not stop cleanly on SIGTERM: {bad}"


async def upload(http: aiohttp.ClientSession, fleet: Fleet, data: bytes, *, key: str | None = None) -> tuple[int, dict]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename="photo.jpg", content_type="image/jpeg")
    form.add_field("uploaderId", "fleet")
    form.add_field("category", "PRODUCT")
    headers = {"Idempotency-Key": key} if key else {}
    async with http.post(f"{fleet.nginx}/api/images", data=form, headers=headers) as r:
        return r.status, (await r.json() if r.content_type == "application/json" else {})


def conversions_by(fleet: Fleet) -> dict[str, int]:
    return {
        n: sum(e.get("event") == "image_converted" for e in fleet.processes[n].log_events())
        for n in fleet.members_named("worker-")
    }


class Api:
    """The ImageClient's reads through nginx."""

    def __init__(self, http: aiohttp.ClientSession, fleet: Fleet) -> None:
        self.http, self.base = http, fleet.nginx

    async def image(self, image_id: str) -> tuple[int, dict]:
        async with self.http.get(f"{self.base}/api/v1/images/{image_id}") as r:
            return r.status, await r.json()


async def test_uploads_through_nginx_are_converted_by_both_workers_and_nothing_is_kept_on_disk(fleet: Fleet) -> None:
    async with fleet.session() as http:
        ids: list[str] = []

        async def both_converted() -> bool:
            status, body = await upload(http, fleet, images.jpeg(640, 480))
            assert status == 200, body
            ids.append(body["id"])
            await wait_ready(Api(http, fleet), body["id"])  # type: ignore[arg-type]
            return all(conversions_by(fleet).values())

        # Partitions go to the two workers by the group's assignment and images to partitions by id:
        # upload until each worker has converted at least one.
        await services.eventually(both_converted, timeout_s=120, what="a conversion by each worker", interval_s=0)
        for image_id in ids:
            assert (await Api(http, fleet).image(image_id))[1]["status"] == "READY"
    assert not Path(fleet.settings.upload_dir).exists()
    leftovers = [p for d in fleet.scratch_dirs() for p in d.rglob("*") if p.is_file()]
    assert leftovers == []  # each conversion's workspace went with it
    assert all(d.is_dir() for d in fleet.scratch_dirs())  # and each process had its own


async def test_images_are_served_through_nginx_from_the_bucket_with_their_cache_headers(fleet: Fleet) -> None:
    async with fleet.session() as http:
        status, body = await upload(http, fleet, images.jpeg(1000, 500))
        image = await wait_ready(Api(http, fleet), body["id"])  # type: ignore[arg-type]
        assert image["imageUrl"].startswith(fleet.nginx + "/images/PRODUCT/")
        for url in [image["imageUrl"], *(v["imageUrl"] for v in image["variants"])]:
            async with http.get(url) as served:
                assert (served.status, served.headers["Content-Type"]) == (200, "image/webp")
                assert served.headers["Cache-Control"] == IMMUTABLE
                assert served.headers["X-Content-Type-Options"] == "nosniff"
                assert (await served.read())[8:12] == b"WEBP"
            async with http.head(url) as head:
                assert (head.status, head.headers["Cache-Control"]) == (200, IMMUTABLE)
        key = image["imageUrl"].removeprefix(fleet.nginx + "/images/")
        refused = {
            "an original awaiting conversion": f"/images/_originals/{key.replace('.webp', '.jpg')}",
            "the bucket's listing": "/images/",
            "a listing by query": "/images/?list-type=2",
            "a key of no image's shape": "/images/other-bucket/x.webp",
        }
        for what, path in refused.items():
            async with http.get(fleet.nginx + path) as r:
                assert r.status == 404, what
        async with http.get(f"{image['imageUrl']}?acl") as r:  # a sub-resource's query never reaches the store
            assert (r.status, r.headers["Content-Type"]) == (200, "image/webp")
        async with http.put(image["imageUrl"], data=b"x") as r:
            assert r.status == 405


async def test_health_and_the_api_document_answer_through_nginx(fleet: Fleet) -> None:
    async with fleet.session() as http:
        async with http.get(fleet.nginx + "/health") as r:
            assert (r.status, await r.text()) == (200, "Server is up")
        async with http.get(fleet.nginx + "/actuator/health") as r:
            body = await r.json()
        assert (r.status, body["status"]) == (200, "UP")
        assert body["components"]["fileSystem"]["details"] == {"store": f"s3://{plan.BUCKET}/", "writable": True}
        async with http.get(fleet.nginx + "/openapi.json") as r:
            assert r.status == 200 and (await r.json())["openapi"].startswith("3.1")


async def test_a_confirm_through_nginx_announces_the_served_urls(fleet: Fleet) -> None:
    reference = f"fleet-{uuid.uuid4().hex[:8]}"
    async with fleet.session() as http:
        _, body = await upload(http, fleet, images.jpeg(400, 300))
        await wait_ready(Api(http, fleet), body["id"])  # type: ignore[arg-type]
        confirm = {"imageIds": [body["id"]], "referenceId": reference}
        async with http.post(f"{fleet.nginx}/api/v1/images/confirm", json=confirm) as r:
            assert r.status == 200
    (event,) = await read_messages(
        fleet.settings.kafka_bootstrap, "product-image-changed", match=lambda m: m.key == reference, count=1
    )
    (announced,) = event.value["payload"]["images"]
    assert announced["imageUrl"] == body["imageUrl"] and announced["imageUrl"].startswith(fleet.nginx + "/images/")


def workers_cli(fleet: Fleet, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**settings_env(fleet.settings), **fleet.aws, "PATH": "/usr/bin:/bin", "IMAGES_LOG_FORMAT": "json"}
    return subprocess.run(
        [sys.executable, "-m", "workers", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


async def test_the_sweeps_and_requeue_work_on_the_bucket(fleet: Fleet) -> None:
    import aiomysql
    from aiobotocore.session import get_session

    endpoint = fleet.aws["AWS_ENDPOINT_URL"]
    async with fleet.session() as http:
        _, kept = await upload(http, fleet, images.jpeg(500, 300))
        _, failed = await upload(http, fleet, images.noisy_jpeg(256, 256)[:700])
        kept_image = await wait_ready(Api(http, fleet), kept["id"])  # type: ignore[arg-type]
        assert (await wait_ready(Api(http, fleet), failed["id"]))["status"] == "FAILED"  # type: ignore[arg-type]
        requeued = await asyncio.to_thread(workers_cli, fleet, "requeue", failed["id"], "--dry-run")
        assert requeued.returncode == 0 and json.loads(requeued.stdout)["outcome"] == "requeued", requeued.stderr
        orphan = "PRODUCT/2020/01/01/no-such-image.webp"
        async with get_session().create_client("s3", endpoint_url=endpoint) as s3:
            await s3.put_object(Bucket=plan.BUCKET, Key=orphan, Body=b"left behind")
        dsn = fleet.settings.db_dsn
        conn = await aiomysql.connect(
            host=dsn.host, port=dsn.port, user=dsn.user, password=dsn.password, db=dsn.database, autocommit=True
        )
        async with conn.cursor() as cur:  # the FAILED image was uploaded two days ago
            await cur.execute(
                "UPDATE images SET created_at = NOW(6) - INTERVAL 2 DAY WHERE image_id = %s", failed["id"]
            )
        conn.close()
        swept = await asyncio.to_thread(workers_cli, fleet, "sweep", "failed")
        assert swept.returncode == 0 and "removed 1 rows and 1 files" in swept.stdout, swept.stdout + swept.stderr
        # Last-Modified is kept to the second: sweep what is over 3 s old, once the orphan is 4 s old.
        marked = time.time()
        services.wait_until(lambda: time.time() > marked + 4, timeout_s=10, what="the clock to pass four seconds")
        orphans = await asyncio.to_thread(workers_cli, fleet, "sweep", "orphans", "--older-than", "0.05")
        assert orphans.returncode == 0, orphans.stdout + orphans.stderr
        async with get_session().create_client("s3", endpoint_url=endpoint) as s3:
            listed = await s3.list_objects_v2(Bucket=plan.BUCKET, Prefix="PRODUCT/2020/")
        assert "Contents" not in listed  # the orphan went
        for url in [kept_image["imageUrl"], *(v["imageUrl"] for v in kept_image["variants"])]:
            async with http.get(url) as served:
                assert served.status == 200  # a READY image's objects stay


async def test_one_api_killed_uploads_keep_succeeding_through_the_others(fleet: Fleet) -> None:
    victim = fleet.processes["api-2"]
    before = sum(e.get("event") == "request_handled" for e in victim.log_events())
    tries: list[tuple[float, int, str | None]] = []  # (started, status, image id) of every upload
    killed_at: list[float] = []

    async def client(http: aiohttp.ClientSession, uploads: int) -> None:
        for _ in range(uploads):
            started = time.monotonic()
            try:
                status, body = await upload(http, fleet, images.jpeg(64, 48), key=uuid.uuid4().hex)
            except aiohttp.ClientError:
                status, body = 0, {}
            tries.append((started, status, body.get("id")))

    async def kill_after(uploads: int) -> None:
        await services.eventually(lambda: len(tries) >= uploads, timeout_s=60, what=f"{uploads} uploads")
        await asyncio.to_thread(victim.kill)  # SIGKILL, and its exit waited for
        killed_at.append(time.monotonic())

    async with fleet.session() as http:
        await asyncio.gather(kill_after(12), *(client(http, 15) for _ in range(4)))
        after = [status for started, status, _ in tries if started > killed_at[0]]
        assert len(after) >= 20 and set(after) == {200}, tries  # every upload sent after the kill was accepted
        # Only what the victim held when it died went unanswered, at most one per client: nginx's 502, or a
        # dropped connection (0) when the victim died after nginx had begun relaying its answer.
        lost = [status for _, status, _ in tries if status != 200]
        assert len(lost) <= 4 and set(lost) <= {0, 502}, tries
        assert before < sum(e.get("event") == "request_handled" for e in victim.log_events())  # it took its share
        for _, _, image_id in tries[-4:]:
            assert image_id and (await wait_ready(Api(http, fleet), image_id))["status"] == "READY"  # type: ignore[arg-type]


async def test_the_fleet_refuses_calls_without_a_token(fleet: Fleet) -> None:
    async with aiohttp.ClientSession() as anonymous:
        form = aiohttp.FormData()
        form.add_field("file", images.jpeg(64, 48), filename="photo.jpg", content_type="image/jpeg")
        form.add_field("category", "PRODUCT")
        async with anonymous.post(f"{fleet.nginx}/api/images", data=form) as r:
            assert (r.status, (await r.json())["code"]) == (401, "UNAUTHORIZED")
            assert r.headers["WWW-Authenticate"] == 'Bearer realm="image-server"'
        async with anonymous.get(f"{fleet.nginx}/health") as r:
            assert r.status == 200


async def test_nginx_answers_429_with_the_contracts_body_past_the_per_address_limit(fleet: Fleet) -> None:
    """compose/nginx.conf: 50 requests a second per address, bursts of 100, 50 at once (run last: it spends them)."""
    url = f"{fleet.nginx}/api/v1/enums/extensions"

    async def get(http: aiohttp.ClientSession) -> tuple[int, dict, str | None]:
        async with http.get(url) as r:
            return r.status, await r.json(), r.headers.get("Retry-After")

    async with fleet.session() as http:
        answers = await asyncio.gather(*(get(http) for _ in range(300)))
        statuses = [status for status, _, _ in answers]
        assert set(statuses) == {200, 429} and statuses.count(200) <= 150, sorted(set(statuses))
        status, body, retry_after = next(a for a in answers if a[0] == 429)
        assert (body["status"], body["code"], body["path"], retry_after) == (
            429,
            "TOO_MANY_REQUESTS",
            "/api/v1/enums/extensions",
            "1",
        )
        assert body["timestamp"] and body["message"]

        async def passes_again() -> bool:
            return (await get(http))[0] == 200

        await services.eventually(passes_again, timeout_s=10, what="the limit to let requests through again")
