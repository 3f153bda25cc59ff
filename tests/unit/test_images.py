from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from core.errors import IllegalTransition
from core.images import Image, ImageStatus, created, is_legal, requeued, transition

T0 = datetime(2025, 1, 20, 10, 0, tzinfo=UTC)
T1 = datetime(2025, 1, 20, 11, 0, tzinfo=UTC)

# The spec's state table (CONTRACT 3, guide 2.5/6.2), written out independently of core.images.
SPEC = {
    (None, "TEMP"),
    (None, "READY"),
    ("TEMP", "READY"),
    ("TEMP", "FAILED"),
    ("TEMP", "DELETED"),
    ("READY", "CONFIRMED"),
    ("READY", "DELETED"),
    ("CONFIRMED", "DELETED"),
}


def image(status: ImageStatus) -> Image:
    return Image("img-1", status, "PRODUCT", "http://x/PRODUCT/2025/01/20/img-1.webp", "u1", T0, T0)


@pytest.mark.parametrize(("old", "new"), list(itertools.product(list(ImageStatus), list(ImageStatus))))
def test_transition_table_matches_the_spec_for_every_pair(old: ImageStatus, new: ImageStatus) -> None:
    legal = (old.value, new.value) in SPEC
    assert is_legal(old, new) is legal
    if legal:
        moved, change = transition(image(old), new, at=T1, by="tester")
        assert (moved.status, change.old_status, change.new_status) == (new, old, new)
    else:
        with pytest.raises(IllegalTransition):
            transition(image(old), new, at=T1, by="tester")


@pytest.mark.parametrize("new", list(ImageStatus))
def test_creation_is_legal_only_as_temp_or_ready(new: ImageStatus) -> None:
    assert is_legal(None, new) is ((None, new.value) in SPEC)


def test_transition_returns_a_new_image_and_leaves_the_old_one_alone() -> None:
    old = image(ImageStatus.READY)
    moved, change = transition(old, ImageStatus.CONFIRMED, at=T1, by="u", reference_id="ref-1")
    assert old.status is ImageStatus.READY and old.reference_id is None
    assert (moved.reference_id, moved.updated_at) == ("ref-1", T1)
    assert (change.at, change.by) == (T1, "u")


def test_created_history_row_has_no_old_status() -> None:
    change = created(image(ImageStatus.TEMP), by="u1")
    assert (change.old_status, change.new_status, change.at) == (None, ImageStatus.TEMP, T0)


@pytest.mark.parametrize("old", list(ImageStatus))
def test_only_an_operators_requeue_moves_failed_or_temp_back_to_temp(old: ImageStatus) -> None:
    if old in (ImageStatus.FAILED, ImageStatus.TEMP):
        moved, change = requeued(image(old), at=T1, by="operator", reason="codec fixed")
        assert moved.status is ImageStatus.TEMP and moved.updated_at == T1
        assert (change.old_status, change.new_status, change.by, change.reason) == (
            old,
            ImageStatus.TEMP,
            "operator",
            "codec fixed",
        )
    else:
        with pytest.raises(IllegalTransition):
            requeued(image(old), at=T1, by="operator", reason="no")
