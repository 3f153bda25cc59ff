from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core import confirm, errors
from core.images import Image, ImageStatus
from core.references import RULES, ReferenceType

T0 = datetime(2025, 1, 20, 10, 0, tzinfo=UTC)
T1 = datetime(2025, 1, 20, 11, 0, tzinfo=UTC)
PRODUCT = RULES[ReferenceType.PRODUCT]
PROFILE = RULES[ReferenceType.PROFILE]
BANNER = RULES[ReferenceType.BANNER]


def img(
    image_id: str, status: ImageStatus = ImageStatus.READY, *, ref: str | None = None, kind: str = "PRODUCT"
) -> Image:
    return Image(image_id, status, kind, f"http://x/{image_id}.webp", "u", T0, T0, ref)


def plan(rule, ref, ids, images, current=()):  # type: ignore[no-untyped-def]
    return confirm.plan_confirm(rule, ref, ids, {i.image_id: i for i in images}, list(current), at=T1, by="t")


def test_first_confirm_makes_listed_images_confirmed_in_list_order() -> None:
    p = plan(PRODUCT, "p1", ["b", "a"], [img("a"), img("b")])
    assert [i.image_id for i in p.images] == ["b", "a"]
    assert all(i.status is ImageStatus.CONFIRMED and i.reference_id == "p1" for i in p.images)
    assert [(e.image_id, e.seq_number) for e in p.sequence] == [("b", 0), ("a", 1)]
    assert p.event == confirm.IMAGES_CHANGED


def test_images_left_out_of_the_list_become_deleted() -> None:
    old = img("old", ImageStatus.CONFIRMED, ref="p1")
    p = plan(PRODUCT, "p1", ["new"], [img("new")], [old])
    deleted = [i for i, _ in p.changes if i.status is ImageStatus.DELETED]
    assert [i.image_id for i in deleted] == ["old"]


def test_the_same_list_again_is_a_noop() -> None:
    a, b = img("a", ImageStatus.CONFIRMED, ref="p1"), img("b", ImageStatus.CONFIRMED, ref="p1")
    assert plan(PRODUCT, "p1", ["a", "b"], [a, b], [a, b]).is_noop


def test_a_reorder_is_a_change_without_status_changes() -> None:
    a, b = img("a", ImageStatus.CONFIRMED, ref="p1"), img("b", ImageStatus.CONFIRMED, ref="p1")
    p = plan(PRODUCT, "p1", ["b", "a"], [a, b], [a, b])
    assert (p.changes, p.event) == ([], confirm.IMAGES_CHANGED)


def test_single_image_type_replaces_the_current_image_with_one_image_changed() -> None:
    old = img("old", ImageStatus.CONFIRMED, ref="u1", kind="PROFILE")
    p = plan(PROFILE, "u1", ["new"], [img("new", kind="PROFILE")], [old])
    assert p.event == confirm.IMAGE_CHANGED
    assert {(i.image_id, i.status) for i, _ in p.changes} == {
        ("new", ImageStatus.CONFIRMED),
        ("old", ImageStatus.DELETED),
    }


def test_confirming_the_current_single_image_again_is_a_noop() -> None:
    cur = img("a", ImageStatus.CONFIRMED, ref="u1", kind="PROFILE")
    assert plan(PROFILE, "u1", ["a"], [cur], [cur]).is_noop


def test_empty_list_deletes_all_with_images_deleted() -> None:
    cur = [img("a", ImageStatus.CONFIRMED, ref="p1"), img("b", ImageStatus.CONFIRMED, ref="p1")]
    p = plan(PRODUCT, "p1", [], [], cur)
    assert p.event == confirm.IMAGES_DELETED
    assert all(i.status is ImageStatus.DELETED for i, _ in p.changes)


def test_delete_all_on_an_empty_reference_is_a_noop() -> None:
    assert confirm.plan_delete_all("PRODUCT", "p1", [], at=T1, by=None).is_noop


@pytest.mark.parametrize(
    ("status", "ref", "error"),
    [
        (ImageStatus.TEMP, None, errors.ImageProcessingInProgress),
        (ImageStatus.FAILED, None, errors.ImageProcessingFailed),
        (ImageStatus.DELETED, "p1", errors.InvalidImageStatus),
        (ImageStatus.CONFIRMED, "other", errors.ImageAlreadyConfirmed),
    ],
)
def test_unconfirmable_status_raises_its_code(status: ImageStatus, ref: str | None, error: type) -> None:
    with pytest.raises(error):
        plan(PRODUCT, "p1", ["a"], [img("a", status, ref=ref)])


def test_more_than_one_image_for_a_single_type_is_not_allowed() -> None:
    with pytest.raises(errors.NotAllowedMultipleImages):
        plan(PROFILE, "u1", ["a", "b"], [img("a", kind="PROFILE"), img("b", kind="PROFILE")])


def test_more_than_max_images_is_count_exceeded() -> None:
    ids = [f"i{n}" for n in range(11)]
    with pytest.raises(errors.ImageCountExceeded):
        plan(PRODUCT, "p1", ids, [img(i) for i in ids])


def test_banner_is_unlimited() -> None:
    ids = [f"i{n}" for n in range(50)]
    assert len(plan(BANNER, "b1", ids, [img(i, kind="BANNER") for i in ids]).sequence) == 50


def test_duplicate_ids_are_an_invalid_sequence() -> None:
    with pytest.raises(errors.InvalidImageSequence):
        confirm.check_ids(["a", "a"])


def test_blank_ids_are_a_validation_error() -> None:
    with pytest.raises(errors.ValidationError):
        confirm.check_ids(["a", " "])


def test_unknown_id_is_not_found() -> None:
    with pytest.raises(errors.ImageNotFound):
        confirm.reference_type_of(["a", "zz"], {"a": img("a")})


def test_mixed_reference_types_are_an_invalid_reference() -> None:
    with pytest.raises(errors.InvalidReference):
        confirm.reference_type_of(["a", "b"], {"a": img("a"), "b": img("b", kind="POST")})


def test_a_reference_id_or_image_id_longer_than_its_column_is_a_validation_error() -> None:
    confirm.check_reference_id("r" * 200)
    with pytest.raises(errors.ValidationError, match="referenceId"):
        confirm.check_reference_id("r" * 201)
    with pytest.raises(errors.ValidationError, match="imageId"):
        confirm.check_ids(["a", "i" * 256])
    with pytest.raises(errors.ValidationError):
        confirm.check_reference_id("  ")


def test_a_replay_announces_the_current_state_as_a_confirm_of_it_would() -> None:
    from core.confirm import IMAGE_CHANGED, IMAGES_CHANGED, IMAGES_DELETED, plan_replay
    from tests.fakes import REFERENCE_DATA

    rules = REFERENCE_DATA.rules
    a, b = img("a", ImageStatus.CONFIRMED, ref="p"), img("b", ImageStatus.CONFIRMED, ref="p")
    many = plan_replay(rules["PRODUCT"], "p", [b, a])
    assert (many.event, [e.image_id for e in many.sequence], [e.seq_number for e in many.sequence]) == (
        IMAGES_CHANGED,
        ["b", "a"],
        [0, 1],
    )
    assert many.changes == [] and not many.is_noop
    one = plan_replay(rules["PROFILE"], "u", [img("c", ImageStatus.CONFIRMED, ref="u", kind="PROFILE")])
    assert one.event == IMAGE_CHANGED
    assert plan_replay(rules["POST"], "x", []).event == IMAGES_DELETED
