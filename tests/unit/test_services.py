"""Use cases on the in-memory unit of work: one transaction each, events in the outbox, no-ops write nothing."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from core import conversion, errors, operations, services
from core.images import Image, ImageStatus
from core.ports import Conversion, StorageRecord
from core.upload_rules import StoredOriginal
from tests.fakes import REFERENCE_DATA as DATA
from tests.fakes import FakeState, FakeUnitOfWork

T = datetime(2025, 1, 20, 10, 0, tzinfo=UTC)
BASE = "http://img/images/"


def ids() -> services.NewId:
    counter = itertools.count()
    return lambda: f"evt-{next(counter)}"


def original(image_id: str, category: str = "POST") -> StoredOriginal:
    return StoredOriginal(
        image_id, category, "u-1", f"_originals/{category}/2025/01/20/{image_id}.jpg", "JPEG", 10, 4, 3
    )


def seeded(*images: Image) -> FakeUnitOfWork:
    state = FakeState()
    for i in images:
        state.images[i.image_id] = i
        state.storage[i.image_id] = StorageRecord(
            i.image_id, f"_originals/{i.image_id}.jpg", f"_originals/{i.image_id}.jpg", 10, "JPEG"
        )
    return FakeUnitOfWork(state)


def img(image_id: str, kind: str = "POST", status: ImageStatus = ImageStatus.READY, ref: str | None = None) -> Image:
    return Image(image_id, status, kind, f"{BASE}{kind}/{image_id}.webp", "u", T, T, ref)


async def test_async_upload_records_temp_and_announces_image_uploaded() -> None:
    uow = FakeUnitOfWork()
    (image,) = await services.record_uploads(uow, [original("a")], base_url=BASE, now=T, new_id=ids())
    assert (image.status, image.image_url) == (ImageStatus.TEMP, f"{BASE}POST/2025/01/20/a.webp")
    assert [(e.topic, e.key, e.event_type) for e in uow.state.outbox] == [("image-uploaded", "a", "IMAGE_UPLOADED")]
    assert [(h.old_status, h.new_status) for h in uow.state.history] == [(None, ImageStatus.TEMP)]


async def test_sync_upload_records_ready_and_announces_image_ready() -> None:
    uow = FakeUnitOfWork()
    done = [services.Conversion("POST/2025/01/20/a.webp", "WEBP", 7)]
    (image,) = await services.record_uploads(uow, [original("a")], base_url=BASE, now=T, new_id=ids(), converted=done)
    assert image.status is ImageStatus.READY
    assert uow.state.storage["a"].converted_size == 7
    assert [e.event_type for e in uow.state.outbox] == ["IMAGE_READY"]


async def test_confirm_applies_the_plan_and_writes_one_event_in_one_commit() -> None:
    uow = seeded(img("a"), img("b"))
    result = await services.confirm_images(
        uow, reference_id="p1", image_ids=["b", "a"], references=DATA, now=T, new_id=ids()
    )
    assert [p.event for p in result.applied] == ["IMAGES_CHANGED"]
    assert uow.commits == 1
    (event,) = uow.state.outbox
    assert [(i["imageId"], i["seqNumber"]) for i in event.payload["images"]] == [("b", 0), ("a", 1)]
    assert uow.state.versions == {("POST", "p1"): 1}


async def test_a_noop_confirm_commits_nothing() -> None:
    uow = seeded(img("a", status=ImageStatus.CONFIRMED, ref="p1"))
    uow.state.sequences[("POST", "p1")] = []
    result = await services.confirm_images(
        uow, reference_id="p1", image_ids=["a"], references=DATA, now=T, new_id=ids()
    )
    assert (result.applied, uow.commits, uow.state.outbox) == ([], 0, [])


async def test_a_failed_confirm_changes_nothing() -> None:
    uow = seeded(img("a"), img("t", status=ImageStatus.TEMP))
    with pytest.raises(errors.ImageProcessingInProgress):
        await services.confirm_images(
            uow, reference_id="p1", image_ids=["a", "t"], references=DATA, now=T, new_id=ids()
        )
    assert (uow.commits, uow.state.images["a"].status, uow.state.outbox) == (0, ImageStatus.READY, [])


async def test_delete_all_without_a_type_clears_every_type_of_the_reference() -> None:
    uow = seeded(img("p", "PRODUCT", ImageStatus.CONFIRMED, "r"), img("q", "POST", ImageStatus.CONFIRMED, "r"))
    result = await services.delete_all(uow, reference_id="r", reference_type=None, now=T, new_id=ids())
    assert sorted(e.topic for e in uow.state.outbox) == ["post-image-changed", "product-image-changed"]
    assert len(result.applied) == 2
    assert {i.status for i in uow.state.images.values()} == {ImageStatus.DELETED}


def ready(key: str = "POST/2025/01/20/a.webp") -> Conversion:
    return Conversion(key=key, format="WEBP", size=5, width=4, height=3)


async def complete(uow: FakeUnitOfWork, event_id: str, outcome: Conversion) -> conversion.Completion:
    return await conversion.complete_conversion(
        uow, event_id=event_id, image_id="a", outcome=outcome, base_url=BASE, keep_originals=False, now=T, new_id=ids()
    )


async def test_conversion_marks_ready_once_and_hands_back_the_original_to_remove() -> None:
    uow = seeded(img("a", status=ImageStatus.TEMP))
    done = await complete(uow, "e1", ready())
    assert (done.applied, done.origin_to_remove) == (True, "_originals/a.jpg")
    assert uow.state.storage["a"].storage_location == "POST/2025/01/20/a.webp"
    assert uow.state.storage["a"].origin_location is None
    again = await complete(uow, "e1", ready())
    assert (again.applied, len(uow.state.outbox)) == (False, 1)


async def test_a_second_event_for_a_converted_image_never_moves_it_backwards() -> None:
    uow = seeded(img("a", status=ImageStatus.TEMP))
    await complete(uow, "e1", ready())
    late = await complete(uow, "e2", Conversion.failed("late failure"))
    assert (late.applied, uow.state.images["a"].status, uow.state.processed[("image-converter", "e2")]) == (
        False,
        ImageStatus.READY,
        "SKIPPED",
    )


async def test_a_pass_through_result_corrects_the_url() -> None:
    uow = seeded(img("a", status=ImageStatus.TEMP))
    await complete(uow, "e1", Conversion(key="POST/2025/01/20/a.png", format="PNG", size=9))
    assert uow.state.images["a"].image_url == f"{BASE}POST/2025/01/20/a.png"


async def test_an_undecodable_image_ends_failed_with_the_reason() -> None:
    uow = seeded(img("a", status=ImageStatus.TEMP))
    await complete(uow, "e1", Conversion.failed("undecodable JPEG"))
    assert uow.state.images["a"].status is ImageStatus.FAILED
    assert uow.state.history[-1].reason == "undecodable JPEG"
    assert [e.event_type for e in uow.state.outbox] == ["IMAGE_FAILED"]


async def test_a_replay_announces_each_type_of_the_reference_again_and_changes_nothing() -> None:
    uow = seeded(img("a", "PRODUCT"), img("b", "PRODUCT"))
    new_id = ids()  # one event id sequence for the whole test
    await services.confirm_images(uow, reference_id="r", image_ids=["b", "a"], references=DATA, now=T, new_id=new_id)
    before = (dict(uow.state.images), len(uow.state.history))
    events = await operations.replay(uow, reference_id="r", reference_type=None, references=DATA, now=T, new_id=new_id)
    (event,) = events
    assert (event.event_type, event.topic, event.key) == ("IMAGES_CHANGED", "product-image-changed", "r")
    assert [i["imageId"] for i in event.payload["images"]] == ["b", "a"]
    assert uow.state.outbox[-1] == event and (dict(uow.state.images), len(uow.state.history)) == before
    empty = await operations.replay(uow, reference_id="r", reference_type="POST", references=DATA, now=T, new_id=new_id)
    assert [e.event_type for e in empty] == ["IMAGES_DELETED"]
    assert (
        await operations.replay(uow, reference_id="nobody", reference_type=None, references=DATA, now=T, new_id=new_id)
        == []
    )


async def present(key: str) -> bool:
    return True


async def gone(key: str) -> bool:
    return False


async def test_requeue_puts_a_failed_image_back_to_temp_with_a_new_image_uploaded() -> None:
    uow = seeded(img("f", status=ImageStatus.FAILED))
    uow.state.attempts["f"] = 3
    done = await operations.requeue(
        uow, image_id="f", reason="codec fixed", original_exists=present, now=T, new_id=ids()
    )
    assert done.outcome == "requeued" and uow.state.images["f"].status is ImageStatus.TEMP
    (event,) = uow.state.outbox
    assert (event.topic, event.key, event.event_type, event.event_id) == (
        "image-uploaded",
        "f",
        "IMAGE_UPLOADED",
        "evt-0",
    )
    assert event.payload["originKey"] == "_originals/f.jpg" and event.payload["category"] == "POST"
    (change,) = uow.state.history
    assert (change.old_status, change.new_status, change.by, change.reason) == (
        ImageStatus.FAILED,
        ImageStatus.TEMP,
        "operator",
        "requeued: codec fixed",
    )
    assert "f" not in uow.state.attempts  # the new try is not cut short by the old attempts


@pytest.mark.parametrize("status", [ImageStatus.READY, ImageStatus.CONFIRMED, ImageStatus.DELETED])
async def test_requeue_refuses_an_image_past_conversion(status: ImageStatus) -> None:
    uow = seeded(img("r", status=status))
    done = await operations.requeue(uow, image_id="r", reason="x", original_exists=present, now=T, new_id=ids())
    assert done.outcome == "refused" and status.value in (done.reason or "")
    assert uow.commits == 0 and not uow.state.outbox


async def test_requeue_refuses_when_the_original_is_gone_or_the_image_unknown() -> None:
    uow = seeded(img("f", status=ImageStatus.FAILED))
    gone_original = await operations.requeue(uow, image_id="f", reason="x", original_exists=gone, now=T, new_id=ids())
    unknown = await operations.requeue(uow, image_id="nope", reason="x", original_exists=present, now=T, new_id=ids())
    assert gone_original.outcome == unknown.outcome == "refused"
    assert "upload it again" in (gone_original.reason or "") and uow.commits == 0
    assert uow.state.images["f"].status is ImageStatus.FAILED


async def test_requeue_announces_a_stuck_temp_image_again() -> None:
    uow = seeded(img("t", status=ImageStatus.TEMP))
    done = await operations.requeue(uow, image_id="t", reason="stuck", original_exists=present, now=T, new_id=ids())
    assert done.outcome == "requeued" and [e.event_type for e in uow.state.outbox] == ["IMAGE_UPLOADED"]
    assert [(h.old_status, h.new_status) for h in uow.state.history] == [(ImageStatus.TEMP, ImageStatus.TEMP)]


class LostCommit(FakeUnitOfWork):
    """A unit of work whose connection is lost at commit: before the COMMIT went out, or after (in doubt)."""

    def __init__(self, uow: FakeUnitOfWork, *, in_doubt: bool) -> None:
        super().__init__(uow.state)
        self._in_doubt = in_doubt

    async def commit(self) -> None:
        self.commit_in_doubt = self._in_doubt
        raise ConnectionResetError("the connection broke")


@pytest.mark.parametrize("what", ["confirm", "delete"])
async def test_a_confirm_whose_commit_is_in_doubt_says_so_and_one_surely_lost_stays_an_outage(what: str) -> None:
    """CONTRACT 2: 503 means nothing was stored; a commit that may have happened is IMAGE_SAVE_FAILED, saying so."""

    async def run(uow: FakeUnitOfWork) -> object:
        if what == "confirm":
            return await services.confirm_images(
                uow, reference_id="p-1", image_ids=["a"], references=DATA, now=T, new_id=ids()
            )
        return await services.delete_all(uow, reference_id="p-1", reference_type="POST", now=T, new_id=ids())

    seed = seeded(img("a", ref="p-1", status=ImageStatus.CONFIRMED if what == "delete" else ImageStatus.READY))
    with pytest.raises(errors.ImageSaveFailed, match="outcome is unknown"):
        await run(LostCommit(seed, in_doubt=True))
    with pytest.raises(ConnectionResetError):
        await run(LostCommit(seed, in_doubt=False))
