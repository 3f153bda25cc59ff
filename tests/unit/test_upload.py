"""The upload use case (core/upload.py) on fakes: every CONTRACT 2.1 rule, and what a failure leaves behind."""

from __future__ import annotations

import asyncio
import errno
import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

import pytest

from core import errors, upload_rules
from core.images import ImageStatus
from core.ports import Conversion, FileFacts, Undecodable
from core.settings import Settings
from core.upload import IncomingFile, UploadForm, UploadPorts, upload
from core.variants import VariantFile, parse_widths
from tests.fakes import REFERENCE_DATA as REFERENCES
from tests.fakes import FakeStore, FakeUnitOfWork

T = TypeVar("T")
NOW = datetime(2025, 1, 20, 10, 0, tzinfo=UTC)
SETTINGS = Settings(max_file_bytes=1000, base_url="http://img/")
JPEG = FileFacts("JPEG", 64, 32)


class FakeInspector:
    """FileInspector answering the facts given per file content (JPEG facts by default)."""

    def __init__(self, facts: dict[bytes, FileFacts] | None = None) -> None:
        self.facts = facts or {}

    async def inspect(self, data: bytes) -> FileFacts:
        return self.facts.get(data, JPEG)


class FakeConverter:
    """SyncConverter 'writing' into a FakeStore; bytes b"bad" are undecodable."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.widths: list[tuple[int, ...]] = []

    async def convert(self, data: bytes, stem: str, widths: Sequence[int]) -> Conversion:
        self.widths.append(tuple(widths))
        await asyncio.sleep(0)
        if data == b"bad":
            raise Undecodable("undecodable JPEG: truncated")
        if data == b"huge":
            raise Undecodable("the frames add up to more than 50000000 pixels", too_many_pixels=True)
        variants = tuple(VariantFile(w, w // 2, f"{stem}_{w}w.webp", 3) for w in widths if w < 64)
        for key in [f"{stem}.webp", *(v.key for v in variants)]:
            self.store.files[key] = b"webp"
        return Conversion(f"{stem}.webp", "WEBP", 4, 64, 32, variants)


class FailingCommit(FakeUnitOfWork):
    """A unit of work whose commit fails, surely or with its outcome unknown."""

    def __init__(self, *, in_doubt: bool) -> None:
        super().__init__()
        self._in_doubt = in_doubt

    async def commit(self) -> None:
        self.commit_in_doubt = self._in_doubt
        raise ConnectionResetError("the connection broke while COMMIT was in flight")


async def once(transaction: Callable[[], Awaitable[T]]) -> T:
    return await transaction()


def ports(store: FakeStore | None = None, uow: FakeUnitOfWork | None = None, **facts: FileFacts) -> UploadPorts:
    store = store or FakeStore()
    unit = uow or FakeUnitOfWork()
    return UploadPorts(
        store=store,
        inspector=FakeInspector({k.encode(): v for k, v in facts.items()}),
        unit_of_work=lambda: unit,
        transactions=once,
        converter=FakeConverter(store),
    )


def files(*names: str, data: bytes = b"jpeg") -> list[IncomingFile]:
    return [IncomingFile(n, data) for n in names]


async def run(form: UploadForm, at: UploadPorts | None = None, **kw: object):  # type: ignore[no-untyped-def]
    counter = itertools.count()
    return await upload(
        form,
        references=REFERENCES,
        settings=kw.pop("settings", SETTINGS),  # type: ignore[arg-type]
        ports=at or ports(),
        now=NOW,
        new_id=lambda: f"id-{next(counter)}",
        **kw,  # type: ignore[arg-type]
    )


FORM = UploadForm("u-1", "product", single=files("a.jpg"))


async def test_an_svg_over_its_own_limit_is_too_large_below_the_per_file_limit() -> None:
    """An SVG's checks read its whole text: it has a smaller limit, refused before anything is stored."""
    roomy = replace(SETTINGS, max_file_bytes=upload_rules.SVG_MAX_BYTES * 2)
    big = replace(FORM, single=files("a.svg", data=b"<svg/>" + b" " * upload_rules.SVG_MAX_BYTES))
    at = ports()
    with pytest.raises(errors.FileTooLarge, match="an SVG is over"):
        await run(big, at, settings=roomy)
    assert at.store.files == {}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("form", "code"),
    [
        (replace(FORM, multi=files("b.jpg")), "VALIDATION_ERROR"),  # both fields
        (replace(FORM, single=files("a.jpg", "b.jpg")), "VALIDATION_ERROR"),  # `file` twice
        (UploadForm("u-1", "PROFILE", multi=files("a.jpg", "b.jpg")), "NOT_ALLOWED_MULTIPLE_IMAGES"),
        (UploadForm(None, "PROFILE", multi=files("a.jpg", "b.jpg")), "NOT_ALLOWED_MULTIPLE_IMAGES"),  # counts first
        (replace(FORM, uploader_id="  "), "VALIDATION_ERROR"),
        (replace(FORM, uploader_id="u" * 256), "VALIDATION_ERROR"),
        (replace(FORM, reference_type=None), "REFERENCE_TYPE_NOT_FOUND"),
        (replace(FORM, reference_type="NOPE"), "REFERENCE_TYPE_NOT_FOUND"),
        (replace(FORM, single=()), "VALIDATION_ERROR"),  # no file
        (replace(FORM, single=files("photo")), "FILE_EXTENSION_NOT_FOUND"),
        (replace(FORM, single=files("a.php.jpg")), "INVALID_FILE_EXTENSION"),
        (replace(FORM, single=files("a.exe")), "INVALID_FILE_EXTENSION"),
        (replace(FORM, single=files("../a.jpg")), "INVALID_FILE_NAME"),
        (replace(FORM, single=files("a.jpg", data=b"")), "VALIDATION_ERROR"),  # empty
        (replace(FORM, single=files("a.jpg", data=b"x" * 1001)), "FILE_TOO_LARGE"),
    ],
)
async def test_each_rule_of_the_form_and_the_files_answers_its_code(form: UploadForm, code: str) -> None:
    at = ports()
    with pytest.raises(errors.DomainError) as refused:
        await run(form, at)
    assert refused.value.code == code
    assert at.store.files == {}  # type: ignore[attr-defined]  # nothing stored for a refused upload


@pytest.mark.parametrize(
    ("facts", "code"),
    [
        (FileFacts(None), "INVALID_FILE_CONTENT"),
        (FileFacts("MP4", unreadable="not a valid MP4 file: no moov box"), "INVALID_FILE_CONTENT"),
        (
            FileFacts("GIF", too_many_pixels="300 frames of 1000x1000 is over 50000000 pixels"),
            "IMAGE_DIMENSIONS_EXCEEDED",
        ),
        (FileFacts("PNG", unreadable="unreadable image header"), "INVALID_FILE_CONTENT"),
    ],
)
async def test_what_the_bytes_are_decides_the_content_codes(facts: FileFacts, code: str) -> None:
    with pytest.raises(errors.DomainError) as refused:
        await run(replace(FORM, single=files("a.jpg", data=b"odd")), ports(odd=facts))
    assert refused.value.code == code


async def test_the_first_bad_file_of_several_is_the_answer() -> None:
    form = UploadForm("u-1", "POST", multi=[IncomingFile("a.jpg", b"odd"), IncomingFile("b.exe", b"jpeg")])
    with pytest.raises(errors.InvalidFileContent):  # a.jpg's content, before b.exe's extension
        await run(form, ports(odd=FileFacts(None)))


async def test_an_accepted_upload_stores_each_original_and_records_it_temp() -> None:
    at = ports()
    form = UploadForm("u-1", "post", multi=files("a.jpg", "b.jpg"))
    images = await run(form, at)
    assert [(i.image_id, i.status, i.reference_type) for i in images] == [
        ("id-0", ImageStatus.TEMP, "POST"),
        ("id-1", ImageStatus.TEMP, "POST"),
    ]
    assert sorted(at.store.files) == [  # type: ignore[attr-defined]
        "_originals/POST/2025/01/20/id-0.jpg",
        "_originals/POST/2025/01/20/id-1.jpg",
    ]
    uow = at.unit_of_work()
    assert [e.event_type for e in uow.state.outbox] == ["IMAGE_UPLOADED"] * 2  # type: ignore[attr-defined]


async def test_an_upload_command_keeps_the_id_it_names() -> None:
    (image,) = await run(FORM, image_ids=["chosen-id"])
    assert image.image_id == "chosen-id"


async def test_a_sync_upload_converts_first_and_keeps_no_original() -> None:
    at = ports()
    settings = replace(SETTINGS, variant_widths=parse_widths("PROFILE=16,256"))
    (image,) = await run(replace(FORM, reference_type="PROFILE", sync=True), at, settings=settings)
    assert image.status is ImageStatus.READY and image.image_url == "http://img/PROFILE/2025/01/20/id-0.webp"
    assert at.converter.widths == [(16, 256)]  # type: ignore[union-attr]  # the type's widths
    assert sorted(at.store.files) == [  # type: ignore[attr-defined]  # the WebP and its variant, no original
        "PROFILE/2025/01/20/id-0.webp",
        "PROFILE/2025/01/20/id-0_16w.webp",
    ]
    uow = at.unit_of_work()
    assert [v.width for v in uow.state.variants["id-0"]] == [16]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("data", "code"), [(b"bad", "INVALID_FILE_CONTENT"), (b"huge", "IMAGE_DIMENSIONS_EXCEEDED")])
async def test_a_sync_upload_that_cannot_be_converted_leaves_nothing(data: bytes, code: str) -> None:
    at = ports()
    form = UploadForm("u-1", "POST", multi=[IncomingFile("a.jpg", b"jpeg"), IncomingFile("b.jpg", data)], sync=True)
    with pytest.raises(errors.DomainError) as refused:
        await run(form, at)
    assert refused.value.code == code
    assert at.store.files == {}  # type: ignore[attr-defined]  # the good file's conversion is removed too


@pytest.mark.parametrize(
    ("fail_errno", "answer"),
    [(errno.EIO, errors.ImageSaveFailed), (errno.ENOSPC, errors.StorageFull), (errno.EDQUOT, errors.StorageFull)],
)
async def test_a_file_that_cannot_be_stored_fails_the_upload_and_leaves_nothing(
    fail_errno: int, answer: type[errors.DomainError]
) -> None:
    """A failing disk is IMAGE_SAVE_FAILED; a full one (or quota) is 503 SERVICE_UNAVAILABLE: nothing was stored."""
    store = FakeStore(fail_on=1, fail_errno=fail_errno)
    with pytest.raises(answer):
        await run(UploadForm("u-1", "POST", multi=files("a.jpg", "b.jpg")), ports(store))
    assert store.files == {}


async def test_a_commit_that_surely_failed_leaves_no_file() -> None:
    store = FakeStore()
    with pytest.raises(ConnectionResetError):
        await run(FORM, ports(store, FailingCommit(in_doubt=False)))
    assert store.files == {} and store.kept == []


async def test_a_commit_in_doubt_keeps_the_file_and_answers_that_the_outcome_is_unknown() -> None:
    # The row may exist: removing its file would break "no row without its file"; and the answer
    # must not be 503's "nothing was stored" (CONTRACT 2): it is IMAGE_SAVE_FAILED, saying so.
    store = FakeStore()
    with pytest.raises(errors.ImageSaveFailed, match="outcome is unknown"):
        await run(FORM, ports(store, FailingCommit(in_doubt=True)))
    assert list(store.files) == store.kept == ["_originals/PRODUCT/2025/01/20/id-0.jpg"]
