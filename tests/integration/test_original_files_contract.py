"""One OriginalFiles contract (core/ports.py), three stores: the local disk's GroupWriter, the in-memory
fake of the unit tests, and S3 (moto's server, started natively; issue 14)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiobotocore.session import get_session

from adapters.files.directory import Directory, GroupWriter
from adapters.s3.bucket import IMMUTABLE, S3Bucket
from core.ports import OriginalFiles
from tests.conftest import new_bucket
from tests.fakes import FakeStore

ReadBack = Callable[[str], Awaitable[bytes | None]]
# A key each store refuses: a name over the disk's 255-byte limit (the fake refuses it too); an
# empty key for S3 (refused before sending; moto, unlike S3, stores keys over 1,024 bytes).
TOO_LONG = "POST/" + "n" * 1100 + ".jpg"
Store = tuple[OriginalFiles, ReadBack, str]


@pytest.fixture(params=["local", "fake", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, aws: dict[str, str]) -> AsyncIterator[Store]:
    if request.param == "local":
        files = Directory(tmp_path)

        async def read_file(key: str) -> bytes | None:
            try:
                return files.read(key)
            except OSError:
                return None

        yield GroupWriter(files), read_file, TOO_LONG
    elif request.param == "fake":
        fake = FakeStore()

        async def read_fake(key: str) -> bytes | None:
            return fake.files.get(key)

        yield fake, read_fake, TOO_LONG
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        name = new_bucket(endpoint)
        async with S3Bucket.open(name, endpoint_url=endpoint, path_style=True) as s3:  # no prefix: "" is a bad key

            async def read_object(key: str) -> bytes | None:
                try:
                    return await s3.read(key)
                except FileNotFoundError:
                    return None

            yield s3, read_object, ""


async def test_created_files_are_stored_and_listed(store: Store) -> None:
    blobs, read, bad_key = store
    files = [(f"POST/2025/01/20/{n}.jpg", bytes([n]) * (1 + n * 1000)) for n in range(3)]
    created: list[str] = []
    await blobs.create(files, created)
    assert sorted(created) == sorted(k for k, _ in files)
    for key, data in files:
        assert await read(key) == data


async def test_a_file_that_cannot_be_stored_fails_alone_and_the_rest_are_listed(
    store: Store,
) -> None:
    blobs, read, bad_key = store
    good, bad = ("POST/ok.jpg", b"ok"), (bad_key, b"refused")
    created: list[str] = []
    with pytest.raises(OSError):
        await blobs.create([good, bad], created)
    assert created == [good[0]] and await read(good[0]) == b"ok"


async def test_remove_says_whether_the_file_was_there(store: Store) -> None:
    blobs, read, bad_key = store
    await blobs.create([("POST/gone.jpg", b"x")], [])
    assert await blobs.remove("POST/gone.jpg") is True
    assert await blobs.remove("POST/gone.jpg") is False
    assert await read("POST/gone.jpg") is None


async def test_files_kept_in_doubt_stay(store: Store) -> None:
    blobs, read, bad_key = store
    await blobs.create([("POST/doubt.jpg", b"maybe")], [])
    await blobs.keep_in_doubt(["POST/doubt.jpg"])
    assert await read("POST/doubt.jpg") == b"maybe"


async def test_a_missing_bucket_is_an_error_that_names_it(s3_endpoint: str, aws: dict[str, str]) -> None:
    with pytest.raises(RuntimeError, match="no-such-bucket"):
        async with S3Bucket.open("no-such-bucket", endpoint_url=s3_endpoint, path_style=True):
            pass


async def test_served_objects_carry_their_type_and_the_immutable_cache_header(s3_endpoint: str, bucket: str) -> None:
    async with S3Bucket.open(bucket, "p", endpoint_url=s3_endpoint, path_style=True) as s3:
        assert await s3.write("POST/a.webp", b"RIFF....WEBP", content_type="image/webp") == 12
        async with get_session().create_client("s3", endpoint_url=s3_endpoint) as client:
            head = await client.head_object(Bucket=bucket, Key="p/POST/a.webp")
    assert (head["ContentType"], head["CacheControl"]) == ("image/webp", IMMUTABLE)
