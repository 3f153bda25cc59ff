"""core/auth.py: the caller a token's claims name and what each scope allows."""

from __future__ import annotations

import pytest

from core import auth, errors
from core.auth import ANONYMOUS, Caller, caller_of


def test_claims_become_a_caller_with_its_scopes_and_reference_types() -> None:
    caller = caller_of({"sub": "svc", "scope": "images:confirm images:read", "ref_types": ["product"]})
    assert caller == Caller("svc", frozenset({"images:confirm", "images:read"}), frozenset({"PRODUCT"}))


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {"sub": ""},
        {"sub": 7},
        {"sub": "u" * 256},
        {"sub": "u", "scope": ["images:upload"]},
        {"sub": "u", "ref_types": "PRODUCT"},
        {"sub": "u", "ref_types": [1]},
        {"sub": "u", "ref_types": ["P"] * 65},
    ],
)
def test_claims_of_the_wrong_shape_make_the_token_invalid(claims: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(errors.Unauthorized):
        caller_of(claims)


def test_the_anonymous_caller_may_do_everything_as_before_authentication() -> None:
    for scope in auth.SCOPES:
        auth.require(ANONYMOUS, scope)
    assert auth.uploader_of(ANONYMOUS, "anyone") == "anyone"
    auth.require_read(ANONYMOUS, "someone")
    auth.require_reference_type(ANONYMOUS, "PROFILE")


def test_the_uploader_is_the_subject_and_another_uploader_id_is_forbidden() -> None:
    caller = Caller("u1", frozenset({auth.UPLOAD}))
    assert auth.uploader_of(caller, None) == "u1"
    assert auth.uploader_of(caller, "") == "u1"
    assert auth.uploader_of(caller, "u1") == "u1"
    with pytest.raises(errors.Forbidden):
        auth.uploader_of(caller, "u2")
    with pytest.raises(errors.Forbidden) as refused:
        auth.uploader_of(Caller("u1", frozenset({auth.READ})), "u1")
    assert refused.value.scope == auth.UPLOAD


def test_reading_needs_the_read_scope_or_ones_own_image() -> None:
    auth.require_read(Caller("u1", frozenset()), "u1")
    auth.require_read(Caller("r", frozenset({auth.READ})), "u1")
    auth.require_read(Caller("r", frozenset({auth.READ})), None)
    for uploader in ("u2", None):
        with pytest.raises(errors.Forbidden):
            auth.require_read(Caller("u1", frozenset({auth.UPLOAD})), uploader)


def test_reference_types_limit_what_a_caller_confirms() -> None:
    product = Caller("svc", frozenset({auth.CONFIRM}), frozenset({"PRODUCT"}))
    auth.require_reference_type(product, "PRODUCT")
    with pytest.raises(errors.Forbidden):
        auth.require_reference_type(product, "PROFILE")
    assert auth.confirmable(product, ["POST", "PRODUCT", "PROFILE"]) == ["PRODUCT"]
    assert auth.confirmable(Caller("svc", frozenset({auth.CONFIRM})), ["POST"]) == ["POST"]
