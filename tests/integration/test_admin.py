"""The admin commands of `python -m workers` (show, poison, outbox, outbox retry) against real MariaDB."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from tests import images
from tests.integration.conftest import fetch_all
from tests.integration.test_workers import upload
from workers import admin, handlers
from workers.__main__ import parse_args


async def run(settings, capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    capsys.readouterr()  # what the test logged so far is not the command's output
    code = await admin.run(settings, parse_args(list(argv)))
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_show_tells_an_images_whole_story(resources, capsys) -> None:  # type: ignore[no-untyped-def]
    image_id, key, value = await upload(resources, images.jpeg(60, 40))
    assert await handlers.handle_uploaded(resources, key, value) == "READY"
    code, out, _ = await run(resources.settings, capsys, "show", image_id)
    story = json.loads(out)
    assert code == 0 and story["image"]["status"] == "READY"
    assert [(h["from"], h["to"]) for h in story["history"]] == [(None, "TEMP"), ("TEMP", "READY")]
    assert [e["eventType"] for e in story["events"]] == ["IMAGE_UPLOADED", "IMAGE_READY"]
    assert story["conversionAttempts"]["attempts"] == 1 and story["storage"]["width"] == 60
    code, _, err = await run(resources.settings, capsys, "show", str(uuid.uuid4()))
    assert code == admin.NOT_FOUND and "no image" in err


async def test_poison_lists_what_was_skipped(resources, capsys) -> None:  # type: ignore[no-untyped-def]
    assert await handlers.handle_uploaded(resources, b"k", b"not json") == "poison"
    code, out, _ = await run(resources.settings, capsys, "poison")
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and row["consumer"] == "image-converter" and row["reason"].startswith("bad message")


async def test_outbox_shows_pending_and_retry_requeues_failed_rows(resources, capsys, pool) -> None:  # type: ignore[no-untyped-def]
    code, out, err = await run(resources.settings, capsys, "outbox")
    assert (code, out) == (0, "") and "no pending or failed outbox rows" in err  # said, not silent
    await upload(resources, images.jpeg())  # one pending IMAGE_UPLOADED (no relay runs here)
    now = datetime.now(UTC).replace(tzinfo=None)
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            "INSERT INTO outbox (event_id, topic, message_key, event_type, payload, created_at, status, attempts, last_error)"
            " VALUES (%s, 'image-processed', 'k', 'IMAGE_READY', '{}', %s, 'FAILED', 1, 'MessageSizeTooLarge')",
            (str(uuid.uuid4()), now),
        )
    code, out, _ = await run(resources.settings, capsys, "outbox")
    rows = {r["topic"]: r for r in map(json.loads, out.splitlines())}
    assert code == 0 and rows["image-uploaded"]["pending"] == 1 and rows["image-processed"]["failed"] == 1
    assert rows["image-uploaded"]["oldestPendingAgeS"] >= 0
    code, out, err = await run(resources.settings, capsys, "outbox", "retry", "--dry-run")
    assert code == 0 and "dry run" in err and json.loads(out)["lastError"] == "MessageSizeTooLarge"
    assert await fetch_all(pool, "SELECT status FROM outbox WHERE topic = 'image-processed'") == [("FAILED",)]
    code, _, err = await run(resources.settings, capsys, "outbox", "retry")
    assert code == 0 and "re-queued 1" in err
    assert await fetch_all(pool, "SELECT status FROM outbox WHERE topic = 'image-processed'") == [("PENDING",)]
    code, _, _ = await run(resources.settings, capsys, "outbox", "retry")
    assert code == admin.NOT_FOUND  # nothing left to retry


async def test_requeue_converts_a_failed_image_again_once_its_original_is_fixed(resources, capsys, pool) -> None:  # type: ignore[no-untyped-def]
    good = images.noisy_jpeg(256, 256)
    image_id, key, value = await upload(resources, good[:700])  # truncated: decodes to nothing
    assert await handlers.handle_uploaded(resources, key, value) == "FAILED"
    code, out, err = await run(resources.settings, capsys, "requeue", "--failed", "--dry-run")
    assert code == 0 and json.loads(out)["outcome"] == "requeued" and "would requeue 1" in err
    assert await fetch_all(pool, "SELECT status FROM images WHERE image_id = %s", image_id) == [("FAILED",)]

    (origin,) = (json.loads(value)["payload"]["originKey"],)
    resources.storage.files.write(origin, good)  # the operator put the whole file back
    code, out, err = await run(resources.settings, capsys, "requeue", image_id, "--reason", "file restored")
    assert code == 0 and "requeued 1 images, 0 refused" in err
    history = await fetch_all(
        pool,
        "SELECT old_status, new_status, updated_by, reason FROM status_history WHERE image_id = %s ORDER BY id",
        image_id,
    )
    assert history[-1] == ("FAILED", "TEMP", "operator", "requeued: file restored")
    ((new_key, new_value),) = await fetch_all(
        pool,
        "SELECT message_key, payload FROM outbox WHERE message_key = %s AND topic = 'image-uploaded' ORDER BY id DESC LIMIT 1",
        image_id,
    )
    assert json.loads(new_value)["eventId"] != json.loads(value)["eventId"]
    assert await handlers.handle_uploaded(resources, new_key.encode(), new_value.encode()) == "READY"
    assert await handlers.handle_uploaded(resources, key, value) == "skipped"  # the old event stays done

    code, out, err = await run(resources.settings, capsys, "requeue", image_id, str(uuid.uuid4()))
    assert code == admin.NOT_FOUND and [json.loads(line)["outcome"] for line in out.splitlines()] == ["refused"] * 2


async def test_requeue_refuses_an_image_whose_original_is_gone(resources, capsys, pool) -> None:  # type: ignore[no-untyped-def]
    failed_id, _, value = await upload(resources, images.noisy_jpeg(256, 256)[:700])
    assert await handlers.handle_uploaded(resources, b"k", value) == "FAILED"
    resources.storage.files.remove(json.loads(value)["payload"]["originKey"])
    other_id, _, other = await upload(resources, images.noisy_jpeg(256, 256)[:700])
    assert await handlers.handle_uploaded(resources, b"k", other) == "FAILED"
    code, out, err = await run(resources.settings, capsys, "requeue", "--failed")
    outcomes = {r["imageId"]: r for r in map(json.loads, out.splitlines())}
    assert code == admin.PARTLY and outcomes[other_id]["outcome"] == "requeued"
    assert outcomes[failed_id]["outcome"] == "refused" and "upload it again" in outcomes[failed_id]["reason"]
    assert await fetch_all(pool, "SELECT status FROM images WHERE image_id = %s", failed_id) == [("FAILED",)]


async def test_requeue_picks_temp_images_older_than_asked_and_none_younger(resources, capsys, pool) -> None:  # type: ignore[no-untyped-def]
    stuck, _, _ = await upload(resources, images.jpeg())
    fresh, _, _ = await upload(resources, images.jpeg())
    async with pool.acquire() as conn, conn.cursor() as cur:  # its conversion never came: an hour old
        await cur.execute("UPDATE images SET created_at = NOW(6) - INTERVAL 1 HOUR WHERE image_id = %s", (stuck,))
    code, out, err = await run(resources.settings, capsys, "requeue", "--temp-older-than", "30", "--dry-run")
    assert code == 0 and [json.loads(line)["imageId"] for line in out.splitlines()] == [stuck]
    assert "would requeue 1 images" in err
    code, out, _ = await run(resources.settings, capsys, "requeue", "--temp-older-than", "30")
    assert code == 0 and json.loads(out)["outcome"] == "requeued"
    events = await fetch_all(pool, "SELECT message_key FROM outbox WHERE topic = 'image-uploaded' ORDER BY id")
    assert [k for (k,) in events] == [stuck, fresh, stuck]  # one more IMAGE_UPLOADED, for the stuck one only
    code, _, err = await run(resources.settings, capsys, "requeue")
    assert code == admin.NOT_FOUND and "--failed" in err  # nothing named, nothing picked


def test_every_admin_command_has_help() -> None:
    for command in admin.COMMANDS:
        with pytest.raises(SystemExit) as done:
            parse_args([command, "--help"])
        assert done.value.code == 0


def test_a_sweep_on_a_terminal_shows_a_progress_bar(settings) -> None:  # type: ignore[no-untyped-def]
    """On a TTY the sweep draws tqdm's bar on stderr; piped, it logs `sweep_progress` lines (e2e checks those)."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    from tests.processes import ROOT, settings_env

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    env = {**settings_env(settings), "PATH": os.environ["PATH"], "IMAGES_LOG_FORMAT": "json"}
    done = subprocess.run(
        [sys.executable, "-m", "workers", "sweep", "processed"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=follower,
        timeout=60,
    )
    os.close(follower)
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal's other end is closed: all was read
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    assert done.returncode == 0 and b"removed 0 rows" in done.stdout
    assert b"sweep processed" in drawn and b"sweep_progress" not in done.stdout
