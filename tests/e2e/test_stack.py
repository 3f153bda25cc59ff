"""End to end: HTTP in, Kafka and files out, through the real api, relay and worker processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from tests import images, services
from tests.e2e.client import ImageClient
from tests.e2e.conftest import Stack, worker_ready
from tests.e2e.readme import readme_block, run_readme_block, run_readme_block_failing
from tests.kafka_reader import read_messages
from tests.processes import ROOT, settings_env


async def wait_ready(api: ImageClient, image_id: str, timeout_s: float = 60) -> dict:
    async def ready() -> dict | None:
        status, body = await api.image(image_id)
        return body if status == 200 and body["status"] in ("READY", "FAILED") else None

    return await services.eventually(ready, timeout_s=timeout_s, what=f"image {image_id} processed")  # type: ignore[return-value]


async def test_an_upload_becomes_ready_and_is_served_at_its_url(api: ImageClient, stack: Stack) -> None:
    status, (body,) = await api.upload([("photo.jpg", images.jpeg(300, 200))], category="POST")
    assert (status, body["status"]) == (200, "PROCESSING")
    image = await wait_ready(api, body["id"])
    assert (image["status"], image["convertedFormat"], image["imageUrl"]) == ("READY", "WEBP", body["imageUrl"])
    served_status, data = await api.get(body["imageUrl"])
    assert served_status == 200 and data[8:12] == b"WEBP"
    processed = await read_messages(
        stack.settings.kafka_bootstrap, "image-processed", match=lambda m: m.key == body["id"], count=1
    )
    assert processed[0].value["eventType"] == "IMAGE_READY"


async def test_a_worker_serves_its_metrics(api: ImageClient, stack: Stack) -> None:
    """workers-1 is the only worker so far: the upload above was converted there."""
    from prometheus_client.parser import text_string_to_metric_families

    url = f"http://127.0.0.1:{stack.worker_metrics_port}/metrics"

    async def scrape() -> dict[str, list]:  # type: ignore[type-arg]
        status, body = await api.get(url)
        assert status == 200
        return {f.name: f.samples for f in text_string_to_metric_families(body.decode())}

    async def caught_up() -> dict[str, list] | None:  # type: ignore[type-arg]
        families = await scrape()
        lag = families.get("worker_consumer_lag_messages")
        return families if lag and all(s.value == 0 for s in lag) else None

    # Measured every 10 s; offsets are committed every few seconds: poll until it reads 0 behind.
    families = await services.eventually(caught_up, timeout_s=60, what="the consumer lag to be measured at 0")
    assert isinstance(families, dict)
    ready = [
        s
        for s in families["image_conversions"]
        if s.name == "image_conversions_total" and s.labels["outcome"] == "READY"
    ]
    assert ready and ready[0].labels["format"] == "JPG" and ready[0].value >= 1
    assert any(
        s.name == "image_conversion_seconds_count" and s.value >= 1 for s in families["image_conversion_seconds"]
    )
    lag = families["worker_consumer_lag_messages"]
    assert {s.labels["topic"] for s in lag} <= {"image-uploaded", "image-upload-requested"} and all(
        s.value == 0 for s in lag
    )
    assert {s.labels["reason"] for s in families["conversion_process_restarts"]} >= {
        "out_of_memory",
        "timeout",
        "crashed",
    }
    assert "worker_messages_in_flight" in families and "worker_poison_messages" in families


async def test_every_metric_the_dashboard_and_alerts_use_is_exported(api: ImageClient, stack: Stack) -> None:
    """Scrape the api, workers-1 (still the only worker) and the relay after an upload, its conversion,
    a confirm and a poison message."""
    from aiokafka import AIOKafkaProducer
    from prometheus_client.parser import text_string_to_metric_families

    from tests import monitoring

    _, (uploaded,) = await api.upload([("m.jpg", images.jpeg(50, 40))], category="PRODUCT")
    await wait_ready(api, uploaded["id"])
    assert (await api.confirm(f"product-m-{uploaded['id'][:8]}", [uploaded["id"]]))[0] == 200
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait("image-uploaded", b"not an envelope", key=b"poison")
    finally:
        await producer.stop()
    urls = {
        "api": f"http://127.0.0.1:{stack.settings.api_port}/metrics",
        "worker": f"http://127.0.0.1:{stack.worker_metrics_port}/metrics",
        "relay": f"http://127.0.0.1:{stack.relay_metrics_port}/metrics",
    }

    async def exported() -> dict[str, dict[str, float]] | None:
        found: dict[str, dict[str, float]] = {}
        for job, url in urls.items():
            status, body = await api.get(url)
            if status != 200:
                return None
            names: dict[str, float] = {}
            for family in text_string_to_metric_families(body.decode()):
                kinds = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [""])
                names |= {family.name + suffix: 0.0 for suffix in kinds}
                for s in family.samples:
                    names[s.name] = names.get(s.name, 0.0) + s.value
            found[job] = names
        return found if found["worker"].get("worker_poison_messages_total", 0) >= 1 else None

    found = await services.eventually(exported, timeout_s=30, what="the poison message to be counted")
    assert isinstance(found, dict)
    everything = set().union(*found.values())
    assert monitoring.used_metric_names() <= everything, sorted(monitoring.used_metric_names() - everything)
    # The counters moved.
    assert found["api"]["image_uploads_total"] >= 1 and found["api"]["http_requests_total"] >= 1
    assert found["api"]["image_confirms_total"] >= 1
    assert found["worker"]["image_conversions_total"] >= 1
    assert found["relay"]["outbox_commit_to_ack_seconds_count"] >= 1


async def test_an_uploaded_then_confirmed_list_is_announced(api: ImageClient, stack: Stack) -> None:
    _, uploaded = await api.upload([(f"{n}.png", images.png(20 + n, 20)) for n in range(3)], category="PRODUCT")
    ids = [u["id"] for u in uploaded]
    await asyncio.gather(*(wait_ready(api, i) for i in ids))
    reference = f"product-{ids[0][:8]}"
    assert (await api.confirm(reference, list(reversed(ids))))[0] == 200
    (msg,) = await read_messages(
        stack.settings.kafka_bootstrap, "product-image-changed", match=lambda m: m.key == reference, count=1
    )
    assert msg.value["eventType"] == "IMAGES_CHANGED"
    assert [i["imageId"] for i in msg.value["payload"]["images"]] == list(reversed(ids))


async def test_variants_are_served_at_their_urls_and_announced_beside_the_old_fields(
    api: ImageClient, stack: Stack
) -> None:
    import io
    import json

    import jsonschema
    from PIL import Image

    _, (body,) = await api.upload([("wide.jpg", images.noisy_jpeg(1000, 500))], category="PRODUCT")
    image = await wait_ready(api, body["id"])
    assert image["status"] == "READY" and (image["width"], image["height"]) == (1000, 500)
    assert [(v["width"], v["height"]) for v in image["variants"]] == [(320, 160), (640, 320)]  # no 1280: no upscale
    for variant in image["variants"]:
        status, data = await api.get(variant["imageUrl"])
        assert status == 200 and variant["imageUrl"].endswith(f"{body['id']}_{variant['width']}w.webp")
        with Image.open(io.BytesIO(data)) as served:
            assert (served.format, served.size) == ("WEBP", (variant["width"], variant["height"]))

    reference = f"product-{body['id'][:8]}"
    assert (await api.confirm(reference, [body["id"]]))[0] == 200
    (msg,) = await read_messages(
        stack.settings.kafka_bootstrap, "product-image-changed", match=lambda m: m.key == reference, count=1
    )
    (listed,) = msg.value["payload"]["images"]
    # What a consumer of the original service reads is unchanged; width, height and variants are added.
    assert {k: listed[k] for k in ("imageId", "imageUrl", "referenceId", "seqNumber")} == {
        "imageId": body["id"],
        "imageUrl": body["imageUrl"],
        "referenceId": reference,
        "seqNumber": 0,
    }
    assert (listed["width"], listed["height"], listed["variants"]) == (1000, 500, image["variants"])
    ready = await read_messages(
        stack.settings.kafka_bootstrap, "image-processed", match=lambda m: m.key == body["id"], count=1
    )
    assert ready[0].value["payload"]["variants"] == image["variants"]
    schema = json.loads((ROOT / "docs" / "events.schema.json").read_text())
    for message in (msg, *ready):
        jsonschema.validate(message.value, schema)  # the published messages, as docs/ describes them


async def test_two_workers_share_the_topic(api: ImageClient, stack: Stack) -> None:
    second = stack.start("workers-2", ["workers", "worker"])
    await services.eventually(lambda: worker_ready(second), timeout_s=60, what="workers-2 to join")
    _, uploaded = await api.upload([(f"{n}.jpg", images.jpeg(64, 48)) for n in range(16)], category="BANNER")
    done = await asyncio.gather(*(wait_ready(api, u["id"]) for u in uploaded))
    assert {d["status"] for d in done} == {"READY"}
    workers_that_converted = {
        name
        for name, p in stack.processes.items()
        if name.startswith("workers") and {e.get("image_id") for e in p.log_events()} & {u["id"] for u in uploaded}
    }
    assert workers_that_converted == {"workers-1", "workers-2"}


async def test_workers_joining_and_leaving_lose_nothing_and_apply_nothing_twice(api: ImageClient, stack: Stack) -> None:
    from adapters.db import mariadb

    _, uploaded = await api.upload(
        [(f"{n}.jpg", images.noisy_jpeg(640, 480, seed=n)) for n in range(24)], category="POST"
    )
    joining = stack.start("workers-3", ["workers", "worker"])  # joins while the batch is being converted
    first = stack.processes["workers-1"]
    await services.eventually(lambda: worker_ready(joining), timeout_s=60, what="workers-3 to join")
    assert first.terminate() == 0  # leaves, cleanly, part-way through
    done = await asyncio.gather(*(wait_ready(api, u["id"], timeout_s=120) for u in uploaded))
    assert {d["status"] for d in done} == {"READY"}

    ids = [u["id"] for u in uploaded]
    marks = ", ".join(["%s"] * len(ids))
    pool = await mariadb.create_pool(stack.settings.db_dsn, size=1)
    try:
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(
                f"SELECT image_id, COUNT(*) FROM status_history WHERE new_status = 'READY' AND image_id IN ({marks}) GROUP BY image_id",
                ids,
            )
            ready_rows = dict(await cur.fetchall())
            await cur.execute(
                f"SELECT message_key, COUNT(*) FROM outbox WHERE topic = 'image-processed' AND message_key IN ({marks}) GROUP BY message_key",
                ids,
            )
            processed_rows = dict(await cur.fetchall())
    finally:
        pool.close()
        await pool.wait_closed()
    assert ready_rows == dict.fromkeys(ids, 1), "every image moved to READY exactly once"
    assert processed_rows == dict.fromkeys(ids, 1), "every image announced exactly once"


def workers_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m workers ARGS` against the stack's settings, as an operator would."""
    env = {**settings_env(stack.settings), "PATH": "/usr/bin:/bin", "IMAGES_LOG_FORMAT": "json"}
    return subprocess.run(
        [sys.executable, "-m", "workers", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


async def test_an_upload_command_sent_with_the_cli_becomes_ready(api: ImageClient, stack: Stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    photo = tmp_path / "from-a-service.png"
    photo.write_bytes(images.png(30, 20, mode="RGB"))
    sent = await asyncio.to_thread(
        workers_cli, stack, "send-upload", str(photo), "--category", "profile", "--uploader-id", "svc-1"
    )
    assert sent.returncode == 0, sent.stderr
    image_id = sent.stdout.strip().splitlines()[-1]
    image = await wait_ready(api, image_id)
    assert (image["status"], image["referenceType"], image["uploaderId"]) == ("READY", "PROFILE", "svc-1")


async def test_the_sweep_cli_removes_what_expired_and_keeps_the_rest(api: ImageClient, stack: Stack) -> None:
    """An expired FAILED image and an orphan file go; a READY image's files stay served."""
    import os
    import time
    from pathlib import Path

    import aiomysql

    root = Path(stack.settings.upload_dir)
    _, (kept,) = await api.upload([("kept.jpg", images.noisy_jpeg(700, 350))], category="POST")
    _, (failed,) = await api.upload([("cut.jpg", images.noisy_jpeg(256, 256)[:700])], category="POST")
    kept_image, failed_image = await wait_ready(api, kept["id"]), await wait_ready(api, failed["id"])
    assert (kept_image["status"], failed_image["status"]) == ("READY", "FAILED")
    orphan = root / "POST" / "2020" / "01" / "01" / "no-such-image.webp"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left behind")
    kept_files = [
        root / u.removeprefix(stack.settings.base_url)
        for u in [kept_image["imageUrl"]] + [v["imageUrl"] for v in kept_image["variants"]]
    ]
    for path in [orphan, *kept_files]:
        os.utime(path, (time.time() - 7200,) * 2)  # older than the orphan sweep's hour
    dsn = stack.settings.db_dsn
    conn = await aiomysql.connect(
        host=dsn.host, port=dsn.port, user=dsn.user, password=dsn.password, db=dsn.database, autocommit=True
    )
    async with conn.cursor() as cur:  # the FAILED image was uploaded two days ago
        await cur.execute("UPDATE images SET created_at = NOW(6) - INTERVAL 2 DAY WHERE image_id = %s", (failed["id"],))
    conn.close()

    swept = await asyncio.to_thread(workers_cli, stack, "sweep", "failed")
    assert swept.returncode == 0 and "removed 1 rows and 1 files" in swept.stdout, swept.stdout + swept.stderr
    assert (await api.image(failed["id"]))[0] == 404
    orphans = await asyncio.to_thread(workers_cli, stack, "sweep", "orphans")
    assert orphans.returncode == 0 and "sweep_progress" in orphans.stderr  # progress is logged, on stderr
    assert not orphan.exists() and all(p.exists() for p in kept_files)
    for url in [kept_image["imageUrl"]] + [v["imageUrl"] for v in kept_image["variants"]]:
        assert (await api.get(url))[0] == 200


async def test_the_readmes_quickstart_runs_as_written(stack: Stack, tmp_path: Path) -> None:
    script = readme_block("## Quickstart")
    assert script.startswith("API=http://127.0.0.1:8080\n"), "the quickstart's first line names the local API"
    event = await run_readme_block(script, stack.settings, tmp_path)
    assert len(event["value"]["payload"]["images"]) == 1
    webp = (tmp_path / "photo.webp").read_bytes()
    assert webp[:4] == b"RIFF" and webp[8:12] == b"WEBP"


async def test_the_readmes_quickstart_stops_with_a_reason_when_it_cannot_go_on(stack: Stack, tmp_path: Path) -> None:
    """Pasted as a person would: no photo.jpg here, then a stack that is not running: each stops it, saying why."""
    script = readme_block("## Quickstart")
    missing = await run_readme_block_failing(script, stack.settings, tmp_path / "no-photo")
    assert missing.returncode != 0 and "photo.jpg" in missing.stderr, missing.stderr
    assert '"IMAGES_CHANGED"' not in missing.stdout  # no earlier run's event passed off as this one's
    stopped = replace(stack.settings, api_port=services.free_port())
    (tmp_path / "stopped").mkdir()
    (tmp_path / "stopped" / "photo.jpg").write_bytes(images.noisy_jpeg(64, 48))
    down = await run_readme_block_failing(script, stopped, tmp_path / "stopped")
    assert down.returncode != 0 and "Failed to connect" in down.stderr, down.stderr


async def test_the_admin_commands_on_the_running_stack(api: ImageClient, stack: Stack) -> None:
    """show, poison, outbox and replay, as an operator runs them, against this stack's database and broker."""
    import json

    _, uploaded = await api.upload([(f"{n}.png", images.png(30 + n, 20)) for n in range(2)], category="POST")
    ids = [u["id"] for u in uploaded]
    await asyncio.gather(*(wait_ready(api, i) for i in ids))
    reference = f"post-{ids[0][:8]}"
    assert (await api.confirm(reference, ids))[0] == 200

    shown = await asyncio.to_thread(workers_cli, stack, "show", ids[0])
    assert shown.returncode == 0, shown.stderr
    story = json.loads(shown.stdout[shown.stdout.index("{\n") :])  # after any one-line JSON log
    assert story["image"]["status"] == "CONFIRMED" and story["sequence"][0]["referenceId"] == reference
    assert (await asyncio.to_thread(workers_cli, stack, "show", "no-such-image")).returncode == 1
    assert (await asyncio.to_thread(workers_cli, stack, "poison")).returncode == 0
    outbox = await asyncio.to_thread(workers_cli, stack, "outbox")
    assert outbox.returncode == 0, outbox.stderr
    retry = await asyncio.to_thread(workers_cli, stack, "outbox", "retry", "--dry-run")
    assert retry.returncode == 1 and "no failed outbox rows" in retry.stderr  # the relay gave up on nothing

    replayed = await asyncio.to_thread(workers_cli, stack, "replay", reference)
    assert replayed.returncode == 0 and "wrote 1 events" in replayed.stderr, replayed.stderr
    first, again = await read_messages(
        stack.settings.kafka_bootstrap, "post-image-changed", match=lambda m: m.key == reference, count=2
    )
    assert again.value["eventId"] != first.value["eventId"]  # a new event...
    assert again.value["payload"] == first.value["payload"]  # ...with the current list
    nothing = await asyncio.to_thread(workers_cli, stack, "replay", "never-confirmed")
    assert nothing.returncode == 1


async def test_requeue_turns_a_failed_image_whose_original_is_fixed_into_ready(api: ImageClient, stack: Stack) -> None:
    """An operator restores a broken original and requeues it: the running fleet converts it to READY."""
    import json
    from pathlib import Path

    good = images.noisy_jpeg(256, 256)
    _, (body,) = await api.upload([("cut.jpg", good[:700])], category="POST")
    assert (await wait_ready(api, body["id"]))["status"] == "FAILED"
    shown = await asyncio.to_thread(workers_cli, stack, "show", body["id"])
    story = json.loads(shown.stdout[shown.stdout.index("{\n") :])
    (Path(stack.settings.upload_dir) / story["storage"]["originLocation"]).write_bytes(good)

    requeued = await asyncio.to_thread(workers_cli, stack, "requeue", body["id"], "--reason", "original restored")
    assert requeued.returncode == 0 and "requeued 1 images" in requeued.stderr, requeued.stderr

    async def ready() -> dict | None:
        status, image = await api.image(body["id"])
        return image if status == 200 and image["status"] == "READY" else None

    image = await services.eventually(ready, timeout_s=60, what="the requeued image READY")
    assert image is not None and (image["width"], image["height"]) == (256, 256)
    served_status, data = await api.get(image["imageUrl"])
    assert served_status == 200 and data[8:12] == b"WEBP"
