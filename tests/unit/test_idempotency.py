"""Idempotency-Key's pure rules and the use cases recording an answer with their work (fake unit of work)."""

from __future__ import annotations

import pytest

from core import errors, idempotency, services
from core.idempotency import Remember, StoredAnswer
from tests.fakes import REFERENCE_DATA as DATA
from tests.fakes import FakeUnitOfWork
from tests.unit.test_services import BASE, T, ids, img, original, seeded


@pytest.mark.parametrize(("raw", "key"), [("abc", "abc"), ('"abc"', "abc"), ("  k-1  ", "k-1"), ("k" * 255, "k" * 255)])
def test_a_key_is_a_bare_or_quoted_token(raw: str, key: str) -> None:
    assert idempotency.parse_key(raw) == key


@pytest.mark.parametrize("raw", ["", "  ", '""', "k" * 256, "ключ", "a\tb"])
def test_a_key_that_cannot_be_one_is_a_validation_error(raw: str) -> None:
    with pytest.raises(errors.ValidationError):
        idempotency.parse_key(raw)


def test_the_fingerprint_is_what_the_request_means_and_the_key_is_scoped() -> None:
    base = idempotency.request_of("upload", "u-1", "k", [b"ab", b"c"])
    assert base == idempotency.request_of("upload", "u-1", "k", [b"ab", b"c"])
    assert (
        base.fingerprint != idempotency.request_of("upload", "u-1", "k", [b"a", b"bc"]).fingerprint
    )  # parts kept apart
    assert base.key_hash != idempotency.request_of("upload", "u-2", "k", [b"ab", b"c"]).key_hash
    assert base.key_hash != idempotency.request_of("confirm", "u-1", "k", [b"ab", b"c"]).key_hash


def test_a_stored_answer_is_replayed_only_to_the_same_request() -> None:
    first = idempotency.request_of("upload", "u", "k", [b"x"])
    answer = StoredAnswer(200, b"{}")
    assert idempotency.replay(first, first.fingerprint, answer) is answer
    other = idempotency.request_of("upload", "u", "k", [b"y"])
    with pytest.raises(errors.IdempotencyKeyReused):
        idempotency.replay(other, first.fingerprint, answer)
    assert isinstance(idempotency.in_progress(first, first.fingerprint), errors.IdempotencyRequestInProgress)
    assert isinstance(idempotency.in_progress(other, first.fingerprint), errors.IdempotencyKeyReused)


async def test_an_upload_records_its_answer_in_its_own_transaction() -> None:
    uow = FakeUnitOfWork()
    keyed = idempotency.request_of("upload", "u-1", "k", [b"x"])
    remember = Remember(keyed, lambda images: StoredAnswer(200, ",".join(i.image_id for i in images).encode()))
    await services.record_uploads(
        uow, [original("a"), original("b")], base_url=BASE, now=T, new_id=ids(), remember=remember
    )
    assert uow.commits == 1 and uow.state.answers == {keyed.key_hash: (keyed.fingerprint, StoredAnswer(200, b"a,b"))}
    with pytest.raises(KeyError):  # a second commit under the key fails, as MariaDB's primary key makes it
        await services.record_uploads(uow, [original("c")], base_url=BASE, now=T, new_id=ids(), remember=remember)
    assert set(uow.state.images) == {"a", "b"}


async def test_a_keyed_confirm_that_changes_nothing_still_records_its_answer() -> None:
    uow = seeded(img("a", "POST"))
    confirm = {"reference_id": "r", "image_ids": ["a"], "references": DATA, "now": T}
    assert (await services.confirm_images(uow, **confirm, new_id=ids())).applied  # type: ignore[arg-type]
    commits = uow.commits
    keyed = idempotency.request_of("confirm", "", "k", [b"r"])
    again = await services.confirm_images(
        uow,
        **confirm,  # type: ignore[arg-type]
        new_id=ids(),
        remember=Remember(keyed, idempotency.empty_answer),
    )
    assert again.applied == [] and uow.commits == commits + 1  # no change, but the answer committed
    assert uow.state.answers[keyed.key_hash] == (keyed.fingerprint, StoredAnswer(200, b""))
    emptied = idempotency.request_of("confirm", "", "k2", [b"n"])
    await services.delete_all(
        uow,
        reference_id="nothing-here",
        reference_type=None,
        now=T,
        new_id=ids(),
        remember=Remember(emptied, idempotency.empty_answer),
    )
    assert emptied.key_hash in uow.state.answers
